//! Webhook deliveries: what Azure DevOps sent lately (so an admin sees
//! whether it reaches the hub), the last Test received, the exact steps to
//! create the service hook with every value to paste, and **Create the
//! webhook for me**.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::admin::{get_webhook_overview, CreateWebhook, DeliveryRow, HookSetup, RefusalView};
use crate::ui::components::{loading, AdminErrorView, AdminOnly, CopyButton};

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let create = ServerAction::<CreateWebhook>::new();
    let overview = Resource::new(move || create.version().get(), |_| get_webhook_overview());
    view! {
        <Title text="Webhook deliveries"/>
        <AdminOnly>
            <h1>"Webhook deliveries"</h1>
            <div role="status" aria-live="polite">
                {move || create.value().get().map(|r| match r {
                    Ok(message) => view! { <p class="status-ok">{message}</p> }.into_any(),
                    Err(e) => view! { <AdminErrorView error=e/> }.into_any(),
                })}
            </div>
            <Transition fallback=loading>
                {move || overview.get().map(|o| match o {
                    Err(e) => view! { <AdminErrorView error=e/> }.into_any(),
                    Ok(o) => view! {
                        <section aria-labelledby="recent">
                            <h2 id="recent">"Recent deliveries"</h2>
                            <p>
                                "Last Test received: "
                                <strong>{o.last_test.clone().unwrap_or_else(|| "never".into())}</strong>
                                <span class="muted">" (the Test button of the service hook in Azure DevOps)"</span>
                            </p>
                            <Refused setups=o.setups.clone() unknown=o.unknown_refused.clone()/>
                            {if o.deliveries.is_empty() {
                                let refused = o.unknown_refused.is_some() || o.setups.iter().any(|s| s.refused.is_some());
                                if refused {
                                    view! { <p class="muted">"No delivery accepted yet: every one that reached the hub was refused (above)."</p> }.into_any()
                                } else {
                                    view! { <p class="muted">"No delivery yet: Azure DevOps has not reached the hub. Create the service hook below, then press its Test button."</p> }.into_any()
                                }
                            } else {
                                view! {
                                    <table class="deliveries">
                                        <caption class="sr-only">"The most recent webhook deliveries, newest first"</caption>
                                        <thead><tr>
                                            <th scope="col">"Time"</th>
                                            <th scope="col">"Provider"</th>
                                            <th scope="col">"Event"</th>
                                            <th scope="col">"Repository"</th>
                                            <th scope="col">"Result"</th>
                                            <th scope="col">"Reason"</th>
                                        </tr></thead>
                                        <tbody>
                                            {o.deliveries.iter().map(|d| view! {
                                                <tr>
                                                    <td>{d.at.clone()}</td>
                                                    <td>{d.provider.clone()}</td>
                                                    <td><code>{d.event.clone()}</code></td>
                                                    <td>{d.repository.clone().unwrap_or_else(|| "-".into())}</td>
                                                    <td><span class=format!("badge result-{}", d.result)>{d.result.clone()}</span></td>
                                                    <td>{reason_cell(d)}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                }
                                .into_any()
                            }}
                        </section>
                        {if o.setups.is_empty() {
                            view! { <p class="muted">"Set up a " <a href="/providers">"Git provider"</a> " first."</p> }.into_any()
                        } else {
                            o.setups.into_iter().map(|s| view! { <Setup setup=s create/> }).collect_view().into_any()
                        }}
                    }
                    .into_any(),
                })}
            </Transition>
        </AdminOnly>
    }
}

/// "N times since …": what the refused-delivery counts say.
fn refusal_text(r: &RefusalView) -> String {
    let times = if r.count == 1 { "time" } else { "times" };
    format!(
        "last at {}, {} {times} since {}, last from {}",
        r.last_at, r.count, r.first_at, r.last_address
    )
}

/// Deliveries refused for their credentials: the commonest set-up mistake
/// (a wrong password) shows that Azure DevOps does reach the hub.
#[component]
fn Refused(setups: Vec<HookSetup>, unknown: Option<RefusalView>) -> impl IntoView {
    let providers: Vec<_> = setups
        .into_iter()
        .filter_map(|s| s.refused.clone().map(|r| (s, r)))
        .collect();
    if providers.is_empty() && unknown.is_none() {
        return ().into_any();
    }
    view! {
        <ul class="warning refusals">
            {providers.into_iter().map(|(s, r)| view! {
                <li>
                    <strong>{s.display_name.clone()}</strong>": Azure DevOps reached the hub with a wrong password ("
                    {refusal_text(&r)}
                    "). Set the service hook's password to this provider's webhook password, or "
                    <a href=format!("/providers/{}", s.provider_id)>"generate a new one"</a>
                    " and update the service hooks."
                </li>
            }).collect_view()}
            {unknown.map(|r| view! {
                <li>
                    "Deliveries with no credentials or a user name no provider uses were refused ("
                    {refusal_text(&r)}
                    "). Check the service hook's Basic authentication user name."
                </li>
            })}
        </ul>
    }
    .into_any()
}

#[component]
fn Setup(setup: HookSetup, create: ServerAction<CreateWebhook>) -> impl IntoView {
    let heading = format!("hook-{}", setup.provider_id);
    let labelled_by = heading.clone();
    let url = setup.url.clone();
    let user = setup.username.clone();
    view! {
        <section class="card hook-setup" aria-labelledby=labelled_by>
            <h2 id=heading>"Service hook for " {setup.display_name.clone()}</h2>
            <p>"Create one service hook per repository in Azure DevOps, with these values:"</p>
            <ol class="steps">
                <li>"In Azure DevOps, open the project, then " <strong>"Project settings > Service hooks > + Create subscription"</strong> ", choose " <strong>"Web Hooks"</strong> " and Next."</li>
                <li>"Trigger on this type of event: " <strong>"Code pushed"</strong> ". Repository: the repository (below). Branch: its tracked branch (below). Next."</li>
                <li>
                    "URL: "
                    <span class="copy-row">
                        <input type="text" readonly value=url.clone() aria-label="Webhook URL"/>
                        <CopyButton text=url label="webhook URL"/>
                    </span>
                </li>
                <li>
                    "Basic authentication username: "
                    <span class="copy-row">
                        <input type="text" readonly value=user.clone() aria-label="Basic authentication username"/>
                        <CopyButton text=user label="user name"/>
                    </span>
                </li>
                <li>
                    "Basic authentication password: the webhook password saved with this provider. The hub never shows it again; if it is lost, "
                    <a href=format!("/providers/{}", setup.provider_id)>"generate a new one"</a> " and update the service hooks."
                </li>
                <li>"Resource details to send: " <strong>"All"</strong> "; Messages to send: " <strong>"None"</strong> "; Detailed messages to send: " <strong>"None"</strong> "."</li>
                <li>"Press " <strong>"Test"</strong> ": the hub answers 200 and records it (Last Test received, above). Then " <strong>"Finish"</strong> "."</li>
            </ol>
            {if setup.repositories.is_empty() {
                view! { <p class="muted">"No repository of this provider is replicated yet."</p> }.into_any()
            } else {
                view! {
                    <table>
                        <caption class="sr-only">"Repositories and their service hooks"</caption>
                        <thead><tr>
                            <th scope="col">"Repository filter"</th>
                            <th scope="col">"Branch filter"</th>
                            <th scope="col">"Service hook"</th>
                        </tr></thead>
                        <tbody>
                            {setup.repositories.into_iter().map(|r| {
                                // Once the hub made one, the button checks it (and
                                // replaces it if Azure DevOps disabled or deleted it).
                                let text = if r.hook_status.is_some() { "Check the webhook" } else { "Create the webhook for me" };
                                let label = format!("{text} for {}", r.name);
                                view! {
                                    <tr>
                                        <th scope="row"><span class="muted">{r.organization.clone()} " / " {r.project.clone()} " / "</span>{r.name.clone()}</th>
                                        <td><code>{r.branch.clone()}</code></td>
                                        <td>
                                            {r.hook_status.clone().map(|s| view! { <p class=if r.hook_enabled { "status-ok" } else { "warning" }>{s}</p> })}
                                            <ActionForm action=create attr:class="inline">
                                                <input type="hidden" name="repository_id" value=r.id.clone()/>
                                                <button type="submit" class="secondary" aria-label=label>{text}</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                    <p class="hint">"Create the webhook for me needs the service principal to have the Edit subscriptions permission on the project; when it has not, the reason is shown above. Check the webhook replaces a hook that Azure DevOps disabled or that was deleted there."</p>
                }
                .into_any()
            }}
        </section>
    }
}

/// Why a delivery was handled as it was, and what its push changed once
/// synced (one erased view: the row is deep already).
fn reason_cell(d: &DeliveryRow) -> AnyView {
    let reason = d.reason.clone().unwrap_or_default();
    match d.changes.clone() {
        Some(href) => {
            view! { {reason} " " <a class="changes-link" href=href>"What changed"</a> }.into_any()
        }
        None => reason.into_any(),
    }
}
