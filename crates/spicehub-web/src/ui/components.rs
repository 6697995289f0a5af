//! Small pieces shared by pages.

use leptos::prelude::*;

use crate::api::session::set_status;
use crate::ui::session::SessionContext;

/// Renders its children for admins only; anyone else gets a 403 page that
/// says why, instead of a page that fails in pieces.
#[component]
pub fn AdminOnly(children: ChildrenFn) -> impl IntoView {
    let session = expect_context::<SessionContext>();
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                session
                    .user
                    .get()
                    .map(|user| match user {
                        Ok(Some(u)) if u.is_admin => children.read_value()().into_any(),
                        _ => {
                            set_status(403);
                            view! {
                                <section class="empty-state" role="alert">
                                    <h1>"Admins only"</h1>
                                    <p>
                                        "This page is for hub admins. Ask an admin for the admin role, or go to "
                                        <a href="/registries">"Registries"</a> "."
                                    </p>
                                </section>
                            }
                                .into_any()
                        }
                    })
            }}
        </Suspense>
    }
}

/// An empty list, saying what it will hold and what to do next.
#[component]
pub fn EmptyState(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <section class="empty-state">
            <h2>{title}</h2>
            {children()}
        </section>
    }
}

/// A diagnosis: what went wrong and what to do about it.
#[component]
pub fn DiagnosisBox(diagnosis: crate::api::admin::DiagnosisView) -> impl IntoView {
    view! {
        <div class="diagnosis" data-code=diagnosis.code.clone()>
            <p class="diagnosis-title"><strong>{diagnosis.title}</strong></p>
            <p class="diagnosis-hint">{diagnosis.hint}</p>
        </div>
    }
}

/// An admin call's failure, in words (a diagnosis gets its box).
#[component]
pub fn AdminErrorView(error: crate::api::admin::AdminError) -> impl IntoView {
    use crate::api::admin::AdminError;
    match error {
        AdminError::Diagnosed(d) => view! {
            <div role="alert"><DiagnosisBox diagnosis=d/></div>
        }
        .into_any(),
        AdminError::Fields(list) => view! {
            <div class="form-error" role="alert">
                <p>"Some fields need attention:"</p>
                <ul>{list.into_iter().map(|f| view! { <li>{f.message}</li> }).collect_view()}</ul>
            </div>
        }
        .into_any(),
        AdminError::Message(m) => view! { <p class="form-error" role="alert">{m}</p> }.into_any(),
    }
}

/// Copies `text` to the clipboard (after hydration; before it, the value
/// sits in a read-only field the user can select).
#[component]
pub fn CopyButton(
    #[prop(into)] text: Signal<String>,
    #[prop(into)] label: String,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let aria = format!("Copy {label}");
    view! {
        <button
            type="button"
            class="secondary copy"
            aria-label=aria
            on:click=move |_| {
                copy_to_clipboard(&text.get_untracked());
                copied.set(true);
            }
        >
            {move || if copied.get() { "Copied" } else { "Copy" }}
        </button>
    }
}

fn copy_to_clipboard(_text: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(_text);
    }
}

/// The loading line of admin pages.
pub fn loading() -> impl IntoView {
    view! { <p class="muted" role="status">"Loading…"</p> }
}
