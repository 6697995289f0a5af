//! The WebAssembly bundle. Its only job is to take over the page the server
//! rendered; everything it shows lives in `spicehub-web`.

#[cfg(target_arch = "wasm32")]
mod timing {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        /// `performance.mark`: the browser tests read where hydration
        /// starts and ends, to tell the bundle's compile time from the
        /// time spent taking over the page.
        #[wasm_bindgen(js_namespace = performance, js_name = mark, catch)]
        pub fn mark(name: &str) -> Result<JsValue, JsValue>;
    }
}

/// Entry point of the WebAssembly bundle: takes over the server-rendered page.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    let _ = timing::mark("spicehub:hydrate-start");
    leptos::mount::hydrate_body(spicehub_web::app::App);
    let _ = timing::mark("spicehub:hydrate-end");
}
