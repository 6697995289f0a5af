//! The WebAssembly bundle. Its only job is to take over the page the server
//! rendered; everything it shows lives in `spicehub-web`.

/// Entry point of the WebAssembly bundle: takes over the server-rendered page.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(spicehub_web::app::App);
}
