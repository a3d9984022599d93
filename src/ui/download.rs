//! Downloads made in the page: a link whose file is written when it is clicked (the text
//! goes into a Blob, and the link points at its object URL just before the browser follows
//! it).

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen(module = "/js/download.js")]
extern "C" {
    #[wasm_bindgen(js_name = textObjectUrl)]
    fn text_object_url(text: &str, mime: &str) -> String;
}

/// Points the clicked `<a download>` at `body`, as a file of type `mime`. Browser only; on
/// the server there is nothing to click.
pub fn offer_download(event: &leptos::ev::MouseEvent, mime: &str, body: &str) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let href = text_object_url(body, &format!("{mime};charset=utf-8"));
        if let Some(anchor) = event
            .current_target()
            .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
        {
            let _ = anchor.set_attribute("href", &href);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (event, mime, body);
}
