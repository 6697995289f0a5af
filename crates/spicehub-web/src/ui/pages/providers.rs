//! The Git Providers tab: the providers with their health, the Azure DevOps
//! form (customer-owned app registration or the hub's multi-tenant app),
//! **Test connection** with the diagnosis next to the field it concerns,
//! and the setup checklist (the repository picker is `pages::picker`).
//! Every form is a plain HTML form first; once hydrated it posts without a
//! page load.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::admin::{
    get_provider, get_provider_defaults, get_setup_progress, list_providers, AdminError, CheckView,
    FormOutcome, GeneratePassword, ProviderDefaults, ProviderView, SaveProvider, SetupProgress,
};
use crate::ui::components::{
    loading, AdminErrorView, AdminOnly, CopyButton, DiagnosisBox, EmptyState,
};

/// The Git Providers tab.
#[component]
pub fn ProvidersPage() -> impl IntoView {
    let providers = Resource::new(|| (), |_| list_providers());
    view! {
        <Title text="Git Providers"/>
        <AdminOnly>
            <div class="page-head">
                <h1>"Git Providers"</h1>
                <a class="button primary" href="/providers/new">"+ Set up Git provider"</a>
            </div>
            <Suspense fallback=loading>
                {move || Suspend::new(async move {
                    match providers.await {
                        Ok(list) if list.is_empty() => view! { <NoProvider/> }.into_any(),
                        Ok(list) => view! {
                            <ul class="cards">
                                {list.into_iter().map(|p| view! { <li><ProviderCard provider=p/></li> }).collect_view()}
                            </ul>
                        }
                        .into_any(),
                        Err(e) => view! { <AdminErrorView error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </AdminOnly>
    }
}

#[component]
fn NoProvider() -> impl IntoView {
    view! {
        <EmptyState title="No Git provider yet">
            <p>
                "spicehub reads your repositories as an application: a Microsoft Entra ID app registration "
                "(tenant ID, client ID and a client secret or certificate) added as a user to your Azure DevOps organization. "
                "No personal access token tied to one person is needed."
            </p>
            <p>
                "Next step: register the app in Entra ID, add its service principal to the organization with the Basic access level, then "
                <a href="/providers/new">"set up the Git provider"</a> "."
            </p>
        </EmptyState>
    }
}

#[component]
fn CheckSummary(check: CheckView) -> impl IntoView {
    let text = if check.ok {
        format!(
            "Connection OK on {}: token obtained, {} project(s) and {} repositories visible in {}.",
            check.at, check.projects, check.repositories, check.organization
        )
    } else if check.token_ok {
        format!(
            "Token obtained on {}, but the organization {} check failed:",
            check.at, check.organization
        )
    } else {
        format!("Connection failed on {}:", check.at)
    };
    view! {
        <p class=if check.ok { "status-ok" } else { "status-failed" }>{text}</p>
    }
}

#[component]
fn ProviderCard(provider: ProviderView) -> impl IntoView {
    let p = provider;
    let href = format!("/providers/{}", p.id);
    let add = format!("/providers/{}/repositories", p.id);
    let check = p.last_check.clone();
    view! {
        <article class="card provider-card" aria-labelledby=format!("p-{}", p.id)>
            <h2 id=format!("p-{}", p.id)><a href=href.clone()>{p.display_name.clone()}</a></h2>
            <p class="muted">
                "Azure DevOps · tenant " <code>{p.tenant_id.clone()}</code>
                {(p.onboarding == "app_registration").then(|| view! { " · client " <code>{p.client_id.clone()}</code> })}
            </p>
            <dl class="facts">
                <dt>"Credential"</dt>
                <dd>
                    {p.credential_label.clone()}
                    {p.deprecated.then(|| view! { " " <span class="badge badge-warn">"deprecated"</span> })}
                    {p.credential_set.clone().map(|s| view! { <span class="muted">" (" {s} ")"</span> })}
                </dd>
                <dt>"Secret expiry"</dt>
                <dd>{if p.credential_kind == "federated" {
                    "none: no secret".to_owned()
                } else {
                    p.secret_expires.clone().unwrap_or_else(|| "not recorded".into())
                }}</dd>
                <dt>"Last token obtained"</dt>
                <dd>{p.last_token.clone().unwrap_or_else(|| "never".into())}</dd>
                <dt>"Organizations"</dt>
                <dd>{if p.organizations.is_empty() { "none yet".to_owned() } else { p.organizations.join(", ") }}</dd>
                <dt>"Repositories"</dt>
                <dd>{p.repositories}</dd>
                <dt>"Azure DevOps rate limit"</dt>
                <dd>
                    {if p.rate_limits.is_empty() {
                        view! { "no request sent since the hub started" }.into_any()
                    } else {
                        view! {
                            <ul class="rate-limits">
                                {p.rate_limits.iter().map(|r| view! {
                                    <li data-organization=r.organization.clone()>
                                        <strong>{r.organization.clone()}</strong> ": " {r.budget.clone()} ". "
                                        {r.slowed.clone().map(|s| view! { {s} " " })}
                                        <span class="muted">{r.counts.clone()} "."</span>
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                </dd>
            </dl>
            {p.expiry_warning.clone().map(|w| view! { <p class="warning">{w}</p> })}
            {(p.onboarding == "hub_app" && p.consented.is_none()).then(|| view! {
                <p class="warning">"Waiting for the tenant's admin to grant consent: open the provider for the link."</p>
            })}
            {match check {
                Some(c) => {
                    let d = c.diagnosis.clone();
                    view! {
                        <CheckSummary check=c/>
                        {d.map(|d| view! { <DiagnosisBox diagnosis=d/> })}
                    }
                        .into_any()
                }
                None => view! { <p class="muted">"Connection not tested yet."</p> }.into_any(),
            }}
            <p class="actions">
                <a class="button secondary" href=href>"Edit and test"</a>
                <a class="button secondary" href=add>"Add repositories"</a>
                <a class="button secondary" href="/webhooks">"Webhook deliveries"</a>
            </p>
        </article>
    }
}

/// "+ Set up Git provider": the kinds the hub supports.
#[component]
pub fn NewProviderPage() -> impl IntoView {
    view! {
        <Title text="Set up a Git provider"/>
        <AdminOnly>
            <h1>"Set up a Git provider"</h1>
            <ul class="cards">
                <li>
                    <article class="card">
                        <h2><a href="/providers/new/azure-devops">"Azure DevOps"</a></h2>
                        <p class="muted">
                            "Azure DevOps Services, read as a Microsoft Entra ID application: your own app registration "
                            "(client secret or certificate), or the hub's multi-tenant app after admin consent."
                        </p>
                    </article>
                </li>
            </ul>
        </AdminOnly>
    }
}

/// Which form field a diagnosis concerns (`None`: the test result box).
fn form_field(diagnosis_field: &str) -> Option<&'static str> {
    Some(match diagnosis_field {
        "tenant" => "tenant_id",
        "client_id" => "client_id",
        "secret" => "client_secret",
        "certificate" => "certificate",
        "pat" => "pat",
        "organization" => "organization",
        "federated_issuer" => "federated_issuer",
        "federated_subject" => "federated_subject",
        "federated_audience" => "federated_audience",
        _ => return None,
    })
}

/// Where the form shows a diagnosis (`None`: the test result box): with a
/// federated credential, what Entra ID says about the assertion as if it
/// were a certificate or a secret (a bad signature, a time out of range)
/// concerns the federated credential, shown in its section (`federated`).
fn shown_at(diagnosis_field: &str, kind: &str) -> Option<&'static str> {
    match form_field(diagnosis_field) {
        Some("client_secret" | "certificate") if kind == "federated" => Some("federated"),
        other => other,
    }
}

/// `8-4-4-4-12` hexadecimal digits: what the Azure portal's deep links take
/// as an Application (client) ID.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The Azure portal's Certificates & secrets blade of an app registration.
fn portal_credentials_link(client_id: &str) -> String {
    format!("https://portal.azure.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Credentials/appId/{client_id}")
}

/// The Azure DevOps form: `/providers/new/azure-devops` and `/providers/:id`.
#[component]
pub fn ProviderFormPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id");
    let save = ServerAction::<SaveProvider>::new();
    // Reload the provider after each successful save (not after a refused
    // one, nor after a test: the form keeps what was typed).
    let saved = Memo::new(move |previous: Option<&u32>| {
        let n = previous.copied().unwrap_or(0);
        if matches!(
            save.value().get(),
            Some(Ok(FormOutcome { saved: Some(_), .. }))
        ) {
            n + 1
        } else {
            n
        }
    });
    // Outside the form, which is rebuilt after a save: a new webhook
    // password stays on screen (with its Copy button) for hooks made by hand.
    let password = RwSignal::new(String::new());
    let data = Resource::new(
        move || (id(), saved.get()),
        |(id, _)| async move {
            let defaults = get_provider_defaults().await?;
            let (provider, progress) = match id {
                Some(id) => (
                    Some(get_provider(id.clone()).await?),
                    Some(get_setup_progress(id).await?),
                ),
                None => (None, None),
            };
            Ok::<_, AdminError>((defaults, provider, progress))
        },
    );
    view! {
        <Title text="Azure DevOps provider"/>
        <AdminOnly>
            <Suspense fallback=loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((defaults, provider, progress)) => view! { <ProviderForm defaults provider progress save password/> }.into_any(),
                        Err(e) => view! { <h1>"Azure DevOps provider"</h1> <AdminErrorView error=e/> }.into_any(),
                    }
                })}
            </Suspense>
        </AdminOnly>
    }
}

#[component]
fn FieldError(name: &'static str, save: ServerAction<SaveProvider>) -> impl IntoView {
    let message = move || {
        save.value()
            .get()
            .and_then(|r| r.err())
            .and_then(|e| e.field(name))
    };
    view! {
        <p class="field-error" id=format!("{name}-error") aria-live="polite">
            {message}
        </p>
    }
}

#[component]
fn ProviderForm(
    defaults: ProviderDefaults,
    provider: Option<ProviderView>,
    progress: Option<SetupProgress>,
    save: ServerAction<SaveProvider>,
    password: RwSignal<String>,
) -> impl IntoView {
    let query = use_query_map();
    let editing = provider.is_some();
    let p = provider.clone();
    let get = move |f: fn(&ProviderView) -> String| p.as_ref().map(f).unwrap_or_default();
    let id = get(|p| p.id.clone());
    let title = if editing {
        get(|p| p.display_name.clone())
    } else {
        "Set up Azure DevOps".to_owned()
    };
    let onboarding = provider
        .as_ref()
        .map(|p| p.onboarding.clone())
        .unwrap_or_else(|| "app_registration".into());
    // A new provider starts on the federated credential when Entra ID can
    // reach the hub's issuer (no secret to create, copy or renew).
    let kind = match &provider {
        Some(p) if p.credential_kind != "hub_app" => p.credential_kind.clone(),
        Some(_) => "client_secret".into(),
        None if defaults.federated_recommended => "federated".into(),
        None => "client_secret".into(),
    };
    // The kind checked now (the radios set it once hydrated).
    let kind_value = RwSignal::new(kind.clone());
    // The last test of the values in the form, else the stored health.
    let stored_check = provider.as_ref().and_then(|p| p.last_check.clone());
    let check = Memo::new(move |_| match save.value().get() {
        Some(Ok(FormOutcome { check: Some(c), .. })) => Some(c),
        _ => stored_check.clone(),
    });
    let diagnosis = move || check.get().and_then(|c| c.diagnosis);
    let diag_at = move |field: &'static str| {
        move || {
            diagnosis()
                .filter(|d| shown_at(&d.field, &kind_value.read()) == Some(field))
                .map(|d| view! { <DiagnosisBox diagnosis=d/> })
        }
    };
    let invalid = move |name: &'static str| {
        move || {
            save.value()
                .get()
                .and_then(|r| r.err())
                .and_then(|e| e.field(name))
                .is_some()
                .then_some("true")
        }
    };
    let generate = ServerAction::<GeneratePassword>::new();
    Effect::new(move |_| {
        if let Some(Ok(p)) = generate.value().get() {
            password.set(p);
        }
    });
    let pending = save.pending();
    let webhook_username = provider
        .as_ref()
        .map(|p| p.webhook_username.clone())
        .unwrap_or_else(|| defaults.webhook_username.clone());
    let webhook_url = defaults.webhook_url.clone();
    let consent_banner = move || {
        match query.read().get("consent").as_deref() {
        Some("granted") => Some(view! {
            <p class="status-ok" role="status">"Admin consent granted: the tenant was recorded. Test the connection now."</p>
        }
        .into_any()),
        Some("refused") => Some(view! {
            <div class="form-error" role="alert">
                <p>"Admin consent was not granted."</p>
                <p>{query.read().get("reason").unwrap_or_default()}</p>
            </div>
        }
        .into_any()),
        _ => None,
    }
    };
    let hub_available = defaults.hub_app_client_id.is_some();
    let credential_set = provider.as_ref().and_then(|p| p.credential_set.clone());
    let stored_kind = provider.as_ref().map(|p| p.credential_kind.clone());
    let set_note = move |section: &'static str| {
        credential_set
            .clone()
            .filter(|_| stored_kind.as_deref() == Some(section))
            .map(|s| {
                view! { <p class="hint">"Stored: " {s} ". Leave empty to keep it."</p> }
            })
    };
    // The setup checklist and the consent are watched while the page is
    // open: the tenant's admin may consent from another browser, a first
    // delivery may arrive, and the page shows it without a reload.
    let consented = RwSignal::new(provider.as_ref().and_then(|p| p.consented.clone()));
    let tenant_value = RwSignal::new(get(|p| p.tenant_id.clone()));
    let client_value = RwSignal::new(if onboarding == "hub_app" {
        String::new()
    } else {
        get(|p| p.client_id.clone())
    });
    let saved_provider = provider.is_some();
    // Starts with what the page was rendered with (so hydration matches),
    // then the browser asks again every few seconds.
    let progress = RwSignal::new(progress);
    let watched_id = id.clone();
    Effect::new(move |_| {
        if watched_id.is_empty() {
            return;
        }
        let id = watched_id.clone();
        let handle = set_interval_with_handle(
            move || {
                let id = id.clone();
                leptos::task::spawn_local(async move {
                    if let Ok(p) = get_setup_progress(id).await {
                        if p.consented.is_some() && consented.get_untracked().is_none() {
                            tenant_value.set(p.tenant_id.clone());
                            consented.set(p.consented.clone());
                        }
                        progress.set(Some(p));
                    }
                });
            },
            std::time::Duration::from_secs(3),
        )
        .ok();
        on_cleanup(move || {
            if let Some(h) = handle {
                h.clear();
            }
        });
    });
    let consent = provider
        .as_ref()
        .filter(|p| p.onboarding == "hub_app")
        .map(|p| p.consent_link.clone());
    let warnings = defaults.public_url_warnings.clone();
    let delete_link = provider
        .as_ref()
        .map(|p| format!("/providers/{}/delete", p.id));
    let add_link = provider
        .as_ref()
        .map(|p| format!("/providers/{}/repositories", p.id));
    let credential_label = provider.as_ref().map(|p| p.credential_label.clone());
    // The three values of the federated credential: the Subject is the
    // saved provider's (stable), else a fresh one for this form.
    let issuer = defaults.issuer.clone();
    let audience = defaults.federated_audience.clone();
    let federated_subject = provider
        .as_ref()
        .and_then(|p| p.federated_subject.clone())
        .unwrap_or_else(|| defaults.new_federated_subject.clone());
    let federated_recommended = defaults.federated_recommended;
    let federated_problem = defaults.federated_problem.clone();

    view! {
        <div class="page-head">
            <h1>{title}</h1>
            {credential_label.map(|label| view! {
                <p class="muted credential-label" data-testid="credential-label">"Credential: " {label}</p>
            })}
            <p class="actions">
                {add_link.map(|add| view! { <a class="button secondary" href=add>"Add repositories"</a> })}
                {delete_link.map(|del| view! { <a class="button secondary danger" href=del>"Delete provider…"</a> })}
            </p>
        </div>
        {(!warnings.is_empty()).then(|| view! {
            <div class="warning public-url" role="note">
                {warnings.into_iter().map(|w| view! { <p>{w}</p> }).collect_view()}
            </div>
        })}
        {consent_banner}
        {provider.as_ref().and_then(|p| p.expiry_warning.clone()).map(|w| view! { <p class="warning" role="status">{w}</p> })}
        <ActionForm action=save attr:class="form provider-form" attr:novalidate=true>
            <input type="hidden" name="id" value=id/>
            {move || save.value().get().and_then(|r| r.err()).map(|e| view! { <AdminErrorView error=e/> })}

            <fieldset>
                <legend>"Provider"</legend>
                <label for="display_name">"Display name"</label>
                <input id="display_name" name="display_name" type="text" maxlength="100"
                    value=get(|p| p.display_name.clone())
                    aria-describedby="display_name-error" aria-invalid=invalid("display_name")/>
                <FieldError name="display_name" save/>
            </fieldset>

            <fieldset>
                <legend>"Microsoft Entra ID application"</legend>
                {hub_available.then(|| {
                    let own = onboarding != "hub_app";
                    view! {
                        <div class="choices" role="radiogroup" aria-label="Onboarding model">
                            <label class="choice">
                                <input type="radio" id="onboarding-app_registration" name="onboarding" value="app_registration" checked=own/>
                                " Our own app registration (tenant ID, client ID and a secret or certificate)"
                            </label>
                            <label class="choice">
                                <input type="radio" id="onboarding-hub_app" name="onboarding" value="hub_app" checked=!own/>
                                " The hub's multi-tenant app: an admin of our tenant grants consent, no secret to handle"
                            </label>
                        </div>
                        <FieldError name="onboarding" save/>
                    }
                })}
                {(!hub_available).then(|| view! { <input type="hidden" name="onboarding" value="app_registration"/> })}

                <label for="tenant_id">"Directory (tenant) ID"</label>
                <input id="tenant_id" name="tenant_id" type="text" autocomplete="off" spellcheck="false"
                    placeholder="72f988bf-86f1-41af-91ab-2d7cd011db47 or contoso.onmicrosoft.com"
                    value=get(|p| p.tenant_id.clone())
                    prop:value=move || tenant_value.get()
                    on:input=move |ev| tenant_value.set(event_target_value(&ev))
                    aria-describedby="tenant_id-error" aria-invalid=invalid("tenant_id")/>
                <FieldError name="tenant_id" save/>
                {diag_at("tenant_id")}

                <div class="own-app">
                    <label for="client_id">"Application (client) ID"</label>
                    <input id="client_id" name="client_id" type="text" autocomplete="off" spellcheck="false"
                        placeholder="0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b30"
                        value=client_value.get_untracked()
                        on:input=move |ev| client_value.set(event_target_value(&ev))
                        aria-describedby="client_id-error" aria-invalid=invalid("client_id")/>
                    <FieldError name="client_id" save/>
                    {diag_at("client_id")}

                    <div class="choices" role="radiogroup" aria-label="Credential">
                        <label class="choice">
                            <input type="radio" id="kind-federated" name="credential_kind" value="federated" checked=kind == "federated"
                                on:change=move |_| kind_value.set("federated".into())/>
                            " Federated credential (no secret)"
                            {federated_recommended.then(|| view! { " " <span class="badge badge-ok">"recommended"</span> })}
                        </label>
                        <label class="choice">
                            <input type="radio" id="kind-client_secret" name="credential_kind" value="client_secret" checked=kind == "client_secret"
                                on:change=move |_| kind_value.set("client_secret".into())/>
                            " Client secret"
                        </label>
                        <label class="choice">
                            <input type="radio" id="kind-certificate" name="credential_kind" value="certificate" checked=kind == "certificate"
                                on:change=move |_| kind_value.set("certificate".into())/>
                            " Certificate"
                        </label>
                        <label class="choice">
                            <input type="radio" id="kind-pat" name="credential_kind" value="pat" checked=kind == "pat"
                                on:change=move |_| kind_value.set("pat".into())/>
                            " Personal access token " <span class="badge badge-warn">"deprecated"</span>
                        </label>
                    </div>

                    <div class="cred-section cred-federated">
                        <p id="federated-intro">
                            "In the Azure portal open App registrations › your app › Certificates & secrets › Federated credentials › Add credential, "
                            "choose the scenario \"Other issuer\" and enter these three values. "
                            "The hub signs its own assertions with keys it publishes at the Issuer: there is no secret to create, paste or renew."
                        </p>
                        {federated_problem.map(|problem| view! {
                            <div class="warning" role="note" id="federated-problem">
                                <p>
                                    "Federation cannot work from this URL: " {problem} ". "
                                    "Entra ID fetches the hub's keys over HTTPS from the internet, so it cannot check the hub's assertions. "
                                    "Use a client secret or a certificate instead, or serve the hub at a public HTTPS address (SPICEHUB_PUBLIC_URL); "
                                    <code>"spicehub issuer check"</code> " tells what Entra ID would see."
                                </p>
                            </div>
                        })}
                        {move || {
                            let client = client_value.get();
                            let client = client.trim();
                            is_guid(client).then(|| {
                                let href = portal_credentials_link(client);
                                view! {
                                    <p>
                                        <a href=href target="_blank" rel="noreferrer" data-testid="federated-portal-link">
                                            "Open this app's Certificates & secrets in the Azure portal"
                                        </a>
                                    </p>
                                }
                            })
                        }}
                        <div class="federated-value" data-field="federated_issuer">
                            <label for="federated-issuer">"Issuer"</label>
                            <p class="copy-row">
                                <input id="federated-issuer" type="text" readonly spellcheck="false"
                                    value=issuer.clone() aria-describedby="federated-intro"/>
                                <CopyButton text=issuer label="Issuer"/>
                            </p>
                            {diag_at("federated_issuer")}
                        </div>
                        <div class="federated-value" data-field="federated_subject">
                            <label for="federated-subject">"Subject"</label>
                            <p class="copy-row">
                                <input id="federated-subject" type="text" readonly spellcheck="false"
                                    value=federated_subject.clone() aria-describedby="federated_subject-error federated-intro"/>
                                <CopyButton text=federated_subject.clone() label="Subject"/>
                            </p>
                            <input type="hidden" name="federated_subject" value=federated_subject/>
                            <FieldError name="federated_subject" save/>
                            {diag_at("federated_subject")}
                        </div>
                        <div class="federated-value" data-field="federated_audience">
                            <label for="federated-audience">"Audience"</label>
                            <p class="copy-row">
                                <input id="federated-audience" type="text" readonly spellcheck="false"
                                    value=audience.clone() aria-describedby="federated-intro"/>
                                <CopyButton text=audience label="Audience"/>
                            </p>
                            {diag_at("federated_audience")}
                        </div>
                        <p class="hint">"Entra ID can take a few minutes to use a federated credential just added: if the test says no credential matches yet, try again shortly."</p>
                        {diag_at("federated")}
                    </div>

                    <div class="cred-section cred-client_secret">
                        <label for="client_secret">"Client secret (its Value, not its ID)"</label>
                        <input id="client_secret" name="client_secret" type="password" autocomplete="new-password"
                            spellcheck="false" aria-describedby="client_secret-error" aria-invalid=invalid("client_secret")/>
                        {set_note("client_secret")}
                        <FieldError name="client_secret" save/>
                        {diag_at("client_secret")}
                    </div>
                    <div class="cred-section cred-certificate">
                        <label for="certificate">"Certificate (PEM)"</label>
                        <textarea id="certificate" name="certificate" rows="4" spellcheck="false"
                            placeholder="-----BEGIN CERTIFICATE-----" aria-describedby="certificate-error"></textarea>
                        <label for="private_key">"Private key (PEM, unencrypted)"</label>
                        <textarea id="private_key" name="private_key" rows="4" spellcheck="false"
                            placeholder="-----BEGIN PRIVATE KEY-----"></textarea>
                        {set_note("certificate")}
                        <FieldError name="certificate" save/>
                        {diag_at("certificate")}
                    </div>
                    <div class="cred-section cred-pat">
                        <p class="warning">"Personal access tokens belong to one person and expire with their account: use them only to migrate an old setup, then switch to a client secret or certificate."</p>
                        <label for="pat">"Personal access token"</label>
                        <input id="pat" name="pat" type="password" autocomplete="new-password" aria-describedby="pat-error"/>
                        {set_note("pat")}
                        <FieldError name="pat" save/>
                        {diag_at("pat")}
                    </div>

                    <div class="secret-expiry">
                        <label for="secret_expires">"Secret expiry date (optional)"</label>
                        <input id="secret_expires" name="secret_expires" type="date"
                            value=provider.as_ref().and_then(|p| p.secret_expires.clone()).unwrap_or_default()
                            aria-describedby="secret_expires-error secret_expires-hint"/>
                        <p class="hint" id="secret_expires-hint">"The hub warns from 30 days before it."</p>
                        <FieldError name="secret_expires" save/>
                    </div>
                </div>

                <div class="hub-only">
                    {defaults.hub_app_client_id.clone().map(|c| view! {
                        <p class="hint">
                            "The hub's app (client ID " <code>{c}</code> ") reads your organization after an admin of your tenant consents. "
                            "Save, then send the admin-consent link shown here to that admin. The consent returns to "
                            <code>{defaults.consent_redirect_uri.clone()}</code> "."
                        </p>
                    })}
                    {consent.map(|link| view! {
                        <div class="consent" role="status" aria-live="polite">
                            {move || match (consented.get(), link.clone()) {
                                (Some(at), _) => view! {
                                    <p class="status-ok">"Admin consent granted on " {at} ". Test the connection now."</p>
                                }
                                .into_any(),
                                (None, Some(link)) => view! {
                                    <p>
                                        <a class="button secondary" href=link.clone()>"Grant admin consent"</a>
                                        " (valid for one hour; or send this link to your tenant's admin: this page shows their consent as soon as it arrives)"
                                    </p>
                                    <p class="copy-row">
                                        <input type="text" readonly value=link.clone() aria-label="Admin-consent link"/>
                                        <CopyButton text=link label="admin-consent link"/>
                                    </p>
                                    <p class="muted">"Waiting for consent…"</p>
                                }
                                .into_any(),
                                (None, None) => view! { <p class="warning">"The hub's app is not configured any more."</p> }.into_any(),
                            }}
                        </div>
                    })}
                </div>
            </fieldset>

            <fieldset>
                <legend>"Azure DevOps"</legend>
                <label for="organization">"Organization"</label>
                <div class="prefixed">
                    <span class="prefix" aria-hidden="true">"dev.azure.com/"</span>
                    <input id="organization" name="organization" type="text" autocomplete="off" spellcheck="false"
                        value=get(|p| p.organization.clone())
                        aria-describedby="organization-error" aria-invalid=invalid("organization")/>
                </div>
                <FieldError name="organization" save/>
                {diag_at("organization")}
            </fieldset>

            <fieldset>
                <legend>"Webhook (service hook) credentials"</legend>
                <label for="webhook_url">"Webhook URL"</label>
                <p class="copy-row">
                    <input id="webhook_url" type="text" readonly value=webhook_url.clone()/>
                    <CopyButton text=webhook_url label="webhook URL"/>
                </p>
                <label for="webhook_username">"Basic authentication user name"</label>
                <input id="webhook_username" name="webhook_username" type="text" autocomplete="off"
                    value=webhook_username aria-describedby="webhook_username-error" aria-invalid=invalid("webhook_username")/>
                <FieldError name="webhook_username" save/>
                <label for="webhook_password">"Basic authentication password"</label>
                <div class="copy-row">
                    <input id="webhook_password" name="webhook_password" type="text" autocomplete="new-password"
                        spellcheck="false" prop:value=move || password.get()
                        on:input=move |ev| password.set(event_target_value(&ev))
                        aria-describedby="webhook_password-error webhook_password-hint" aria-invalid=invalid("webhook_password")/>
                    <button type="button" class="secondary" on:click=move |_| { generate.dispatch(GeneratePassword {}); }>
                        "Generate"
                    </button>
                    <CopyButton text=Signal::derive(move || password.get()) label="webhook password"/>
                </div>
                <p class="hint" id="webhook_password-hint">
                    {if editing {
                        "Stored. Leave empty to keep it. A new one replaces it when you save: the hub sends it to the service hooks it created, and the previous one is still accepted for a while (or until the first delivery with the new one), so you can update hooks made by hand."
                    } else {
                        "Generate one (or type 20 to 256 characters without spaces), and copy it now: the hub never shows it again."
                    }}
                </p>
                <FieldError name="webhook_password" save/>
                {provider.as_ref().and_then(|p| p.previous_password_until.clone()).map(|until| view! {
                    <p class="hint">"The previous webhook password is still accepted until " {until} ", or until the first delivery with the new one."</p>
                })}
                <div role="status" aria-live="polite" class="save-notes">
                    {move || save.value().get().and_then(|r| r.ok()).filter(|o| !o.notes.is_empty()).map(|o| view! {
                        <ul>{o.notes.into_iter().map(|n| view! { <li>{n}</li> }).collect_view()}</ul>
                    })}
                </div>
            </fieldset>

            <section class="test-result" aria-live="polite" aria-label="Connection test">
                {move || check.get().map(|c| view! { <CheckSummary check=c/> })}
                {move || diagnosis().map(|d| match shown_at(&d.field, &kind_value.read()) {
                    None => view! { <DiagnosisBox diagnosis=d/> }.into_any(),
                    // Tenant and organization are on screen for both models.
                    Some("tenant_id" | "organization") => view! {
                        <p class="status-failed">{d.title} " (see the field above)"</p>
                    }
                    .into_any(),
                    // The app registration's fields are hidden for the hub's
                    // app: there the diagnosis is shown here in full.
                    Some(_) => view! {
                        <p class="status-failed own-app">{d.title.clone()} " (see the field above)"</p>
                        <div class="hub-only"><DiagnosisBox diagnosis=d/></div>
                    }
                    .into_any(),
                })}
            </section>

            <div class="actions">
                <button type="submit" name="intent" value="save" class="primary" disabled=pending>"Save"</button>
                <button type="submit" name="intent" value="test" class="primary" disabled=pending>
                    {move || if pending.get() { "Working…" } else { "Test connection" }}
                </button>
                <span class="hint">"Test connection tries the values in the form (a token, then the organization) without storing them; only Save stores."</span>
            </div>
        </ActionForm>
        {saved_provider.then(|| view! {
            <section class="checklist" aria-labelledby="checklist-title">
                <h2 id="checklist-title">"Setup checklist"</h2>
                <p class="muted">"Each step is ticked when the hub observes it; this list updates by itself."</p>
                {move || progress.get().map(|p| view! { <Checklist progress=p/> })}
            </section>
        })}
    }
}

#[component]
fn Checklist(progress: SetupProgress) -> impl IntoView {
    let done = progress.steps.iter().filter(|s| s.done).count();
    let total = progress.steps.len();
    view! {
        <p>
            "In Azure DevOps › Organization settings › Users › Add users, search for "
            <strong>{progress.app_name.clone()}</strong> " (Application (client) ID "
            <code>{progress.client_id.clone()}</code> ") "
            <CopyButton text=progress.client_id.clone() label="client ID"/>
        </p>
        <p class="muted">{format!("{done} of {total} steps done.")}</p>
        <ol class="steps">
            {progress.steps.into_iter().map(|s| view! {
                <li class=if s.done { "step done" } else { "step" } data-step=s.key.clone()>
                    <span class="tick" aria-hidden="true">{if s.done { "✓" } else { "○" }}</span>
                    <span class="sr-only">{if s.done { "Done: " } else { "To do: " }}</span>
                    <strong>{s.title}</strong>
                    <span class="muted detail">{s.detail}</span>
                    {s.link.map(|(text, href)| {
                        let external = href.starts_with("http");
                        view! {
                            <a class="step-link" href=href target=external.then_some("_blank") rel=external.then_some("noreferrer")>{text}</a>
                        }
                    })}
                </li>
            }).collect_view()}
        </ol>
    }
}

#[cfg(test)]
mod tests {
    use super::{is_guid, portal_credentials_link, shown_at};

    #[test]
    fn the_portal_link_waits_for_a_whole_client_id() {
        assert!(is_guid("0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b30"));
        assert!(is_guid("0C6F8E2A-4D3B-4F7E-9B1A-2E5D7C9A1B30"));
        assert!(!is_guid("0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b3"));
        assert!(!is_guid("0c6f8e2a-4d3b-4f7e-9b1a"));
        assert!(!is_guid("0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b3g"));
        assert!(!is_guid(""));
        assert!(portal_credentials_link("abc").ends_with("/Credentials/appId/abc"));
    }

    #[test]
    fn signature_diagnoses_go_to_the_federated_section() {
        assert_eq!(shown_at("certificate", "federated"), Some("federated"));
        assert_eq!(shown_at("secret", "federated"), Some("federated"));
        assert_eq!(shown_at("certificate", "certificate"), Some("certificate"));
        assert_eq!(shown_at("secret", "client_secret"), Some("client_secret"));
        assert_eq!(
            shown_at("federated_issuer", "federated"),
            Some("federated_issuer")
        );
        assert_eq!(shown_at("hub", "federated"), None);
        assert_eq!(shown_at("tenant", "federated"), Some("tenant_id"));
    }
}
