//! Downloads made in the page: a link whose file is written when it is clicked (the text
//! goes into the link as a `data:` URL just before the browser follows it).

/// Points the clicked `<a download>` at `body`, as a file of type `mime`. Browser only; on
/// the server there is nothing to click.
pub fn offer_download(event: &leptos::ev::MouseEvent, mime: &str, body: &str) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let href = format!(
            "data:{mime};charset=utf-8,{}",
            String::from(js_sys::encode_uri_component(body))
        );
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
