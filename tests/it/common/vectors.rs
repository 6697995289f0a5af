//! Microsoft's example payloads, read in place from the steering
//! repository's `shared/vectors`, which sits beside the repository root
//! (`<root>/../shared/vectors`). `SPICEHUB_VECTORS` overrides the place. They
//! are never copied into this repository. A missing folder is a failure, not
//! a skip: CI always has it.

use std::path::PathBuf;

pub fn vectors_dir() -> PathBuf {
    let dir = match std::env::var_os("SPICEHUB_VECTORS") {
        Some(p) => PathBuf::from(p),
        None => {
            // The repository root is the workspace's: the folder with Cargo.lock.
            let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let root = manifest
                .ancestors()
                .find(|d| d.join("Cargo.lock").is_file())
                .unwrap_or(&manifest)
                .to_path_buf();
            root.join("..").join("shared").join("vectors")
        }
    };
    assert!(
        dir.join("vsts-rest-api-specs").is_dir() && dir.join("azure-devops-docs").is_dir(),
        "Microsoft's example payloads are not at {} (expected shared/vectors beside the repository root; set SPICEHUB_VECTORS to their folder)",
        dir.display()
    );
    dir
}
