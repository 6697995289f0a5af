//! The sign-in page. The form is a plain HTML form first (it works before
//! the wasm bundle loads); once hydrated it posts without a page reload and
//! gains the show-password toggle.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;

use leptos::server::ServerActionError;
use leptos::server_fn::error::ServerFnUrlError;
use leptos::server_fn::ServerFn;

use crate::api::session::{safe_next, SignIn};
use crate::api::user_message;
use crate::ui::session::SessionContext;

#[component]
pub fn SignInPage() -> impl IntoView {
    let session = expect_context::<SessionContext>();
    let query = use_query_map();
    let next = move || safe_next(query.read().get("next").as_deref());
    let show_password = RwSignal::new(false);
    let pending = session.sign_in.pending();
    // A form posted before the wasm bundle ran comes back here with its error
    // in the URL. Leptos hands that to actions created inside the routes; the
    // session's action is created above them, so it is read here.
    let refused_before_hydration = use_context::<ServerActionError>()
        .filter(|e| e.path() == <SignIn as ServerFn>::PATH)
        .map(|e| user_message(&ServerFnUrlError::<ServerFnError>::decode_err(e.err())));
    let error = move || match session.sign_in.value().get() {
        Some(result) => result.err().map(|e| user_message(&e)),
        None => refused_before_hydration.clone(),
    };
    let already_signed_in = move || matches!(session.user.get(), Some(Ok(Some(_))));

    view! {
        <Title text="Sign in"/>
        <main id="main" class="signin">
            <Suspense fallback=|| ()>
                <Show when=already_signed_in>
                    <Redirect path=next()/>
                </Show>
            </Suspense>
            <section class="card" aria-labelledby="signin-title">
                <h1 id="signin-title">"Sign in to spicehub"</h1>
                <ActionForm action=session.sign_in attr:class="form">
                    <input type="hidden" name="next" value=next/>
                    <label for="email">"E-mail"</label>
                    <input id="email" name="email" type="email" autocomplete="username" required autofocus/>
                    <label for="password">"Password"</label>
                    <div class="password-row">
                        <input
                            id="password"
                            name="password"
                            type=move || if show_password.get() { "text" } else { "password" }
                            autocomplete="current-password"
                            required
                        />
                        <button
                            type="button"
                            class="toggle"
                            aria-controls="password"
                            aria-pressed=move || show_password.get().to_string()
                            on:click=move |_| show_password.update(|s| *s = !*s)
                        >
                            {move || if show_password.get() { "Hide" } else { "Show" }}
                        </button>
                    </div>
                    {move || error().map(|message| view! { <p class="form-error" role="alert">{message}</p> })}
                    <button type="submit" class="primary" disabled=pending>
                        {move || if pending.get() { "Signing in…" } else { "Sign in" }}
                    </button>
                </ActionForm>
            </section>
        </main>
    }
}
