//! The 404 page: says so plainly and offers the way back.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::ui::layout::Frame;

#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::api::context::set_status(404);
    view! {
        <Title text="Page not found" />
        <Frame>
            <section class="empty-state" aria-labelledby="not-found">
                <div class="empty-state__icon" aria-hidden="true">"404"</div>
                <h1 id="not-found">"This page does not exist"</h1>
                <p>"The address may be mistyped, or the page has moved."</p>
                <p>
                    <A href="/" attr:class="button">"Go to the dashboard"</A>
                </p>
            </section>
        </Frame>
    }
}
