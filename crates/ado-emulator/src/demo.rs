//! The demo dataset: tenants, app registrations and organizations with repositories of realistic Python code
//! using spice registries (see `shared/spec/registries.md`).
//!
//! * tenant `contoso.onmicrosoft.com` ([`TENANT_ID`]) with the app `spicehub-sync` ([`CLIENT_ID`] /
//!   [`CLIENT_SECRET`], an expired secret [`EXPIRED_SECRET`], and the testkit certificate);
//! * organization `contoso` (SP = Basic): project `Commerce` (`shop-pipelines`, `ml-models`, `empty-repo`
//!   (empty), `legacy-archive` (disabled)) and project `Platform` (`data-platform`, `platform-docs`);
//! * organization `northwind` (same tenant, SP = Stakeholder → repositories answer 404 TF401019);
//! * organization `tailspin` (same tenant, SP not added → 401 TF401444);
//! * organization `fabrikam` connected to another tenant (a contoso token → 401 TF400813);
//! * a multi-tenant "hub" app registered in the `spicehub` tenant and consented in contoso.

use std::path::PathBuf;

use time::macros::datetime;
use time::OffsetDateTime;

use crate::config::{
    AccessLevel, EmulatorConfig, FileChange, Identity, ProjectConfig, RepoConfig, SeedCommit,
    Signature, Visibility,
};
use crate::testkit;

pub const TENANT_ID: &str = "3f4e1a52-6c1d-4b8e-9a27-5d0c7e1b2a90";
pub const TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
pub const CLIENT_ID: &str = "0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b30";
pub const CLIENT_SECRET: &str = "Xq48Q~demo.Spicehub-Emulator_Secret.Value0";
pub const EXPIRED_SECRET: &str = "Zt73Q~expired.Spicehub-Emulator_Old.Value1";
pub const ORG: &str = "contoso";
pub const ORG_ID: &str = "b8a1f2c4-7e3d-4c59-8f6a-1d2e3c4b5a60";

pub const OTHER_TENANT_ID: &str = "9d2c7b1e-3a4f-4e6d-8c5b-7a1f0e2d3c41";
pub const OTHER_TENANT_DOMAIN: &str = "fabrikam.onmicrosoft.com";
pub const OTHER_CLIENT_ID: &str = "5e7d9c1b-2a3f-4b6e-8d0c-9f1a2b3c4d52";
pub const OTHER_CLIENT_SECRET: &str = "Fb12Q~fabrikam.Emulator_Secret.Value2";

pub const HUB_TENANT_ID: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c63";
pub const HUB_CLIENT_ID: &str = "6b8d0f2a-4c6e-4a8b-9d1f-3e5a7c9b1d74";
pub const HUB_CLIENT_SECRET: &str = "Hb56Q~hub.Multitenant-Emulator_Secret.Value3";

fn at(hours: i64) -> Option<OffsetDateTime> {
    Some(datetime!(2024-03-04 09:00 UTC) + time::Duration::hours(hours))
}

fn put(path: &str, content: &str) -> FileChange {
    FileChange::put(path, content.as_bytes().to_vec())
}

fn seed(message: &str, hours: i64, who: usize, changes: Vec<FileChange>) -> SeedCommit {
    let authors = [
        ("Jamal Hartnett", "jamal.hartnett@contoso.com"),
        ("Aisha Okafor", "aisha.okafor@contoso.com"),
        ("Lena Moreau", "lena.moreau@contoso.com"),
    ];
    let (name, email) = authors[who % authors.len()];
    SeedCommit {
        branch: None,
        from_branch: None,
        message: message.to_string(),
        author: Some(Signature {
            name: name.into(),
            email: email.into(),
        }),
        date: at(hours),
        changes,
        tags: Vec::new(),
    }
}

fn repo(name: &str, seed: Vec<SeedCommit>) -> RepoConfig {
    let mut config = RepoConfig::new(name);
    config.seed = seed;
    config
}

/// The demo configuration.
pub fn demo_config(data_dir: PathBuf) -> EmulatorConfig {
    let mut config = EmulatorConfig::new(data_dir)
        .with_tenant(TENANT_ID, &[TENANT_DOMAIN, "contoso.com"])
        .with_tenant(OTHER_TENANT_ID, &[OTHER_TENANT_DOMAIN])
        .with_tenant(HUB_TENANT_ID, &["spicehub.onmicrosoft.com"])
        .with_app(TENANT_ID, CLIENT_ID, "spicehub-sync")
        .with_secret(CLIENT_ID, CLIENT_SECRET, None)
        .with_expired_secret(CLIENT_ID, EXPIRED_SECRET)
        .with_certificate(CLIENT_ID, testkit::REGISTERED_CERT_PEM)
        .with_app(OTHER_TENANT_ID, OTHER_CLIENT_ID, "fabrikam-sync")
        .with_secret(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, None)
        .with_app(HUB_TENANT_ID, HUB_CLIENT_ID, "spicehub (multi-tenant)")
        .with_secret(HUB_CLIENT_ID, HUB_CLIENT_SECRET, None)
        .with_multi_tenant(HUB_CLIENT_ID, &[TENANT_ID])
        .with_org(ORG, ORG_ID, TENANT_ID)
        .with_member(ORG, CLIENT_ID, AccessLevel::Basic)
        .with_member(ORG, HUB_CLIENT_ID, AccessLevel::Basic)
        .with_org(
            "northwind",
            "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e85",
            TENANT_ID,
        )
        .with_member("northwind", CLIENT_ID, AccessLevel::Stakeholder)
        .with_org(
            "tailspin",
            "d4e5f6a7-b8c9-4dae-9f01-2b3c4d5e6f96",
            TENANT_ID,
        )
        .with_org(
            "fabrikam",
            "e5f6a7b8-c9da-4ebf-8012-3c4d5e6f7aa7",
            OTHER_TENANT_ID,
        )
        .with_member("fabrikam", OTHER_CLIENT_ID, AccessLevel::Basic);
    if let Some(app) = config
        .apps
        .iter_mut()
        .find(|candidate| candidate.client_id == CLIENT_ID)
    {
        for secret in &mut app.secrets {
            if secret.value == CLIENT_SECRET {
                secret.id = Some("7d1e5b2c-9a4f-4c3e-8b6d-2f0a1c3e5d70".into());
                secret.expires_at = Some(datetime!(2099-12-31 23:59 UTC));
            }
            if secret.value == EXPIRED_SECRET {
                secret.id = Some("2c9f4a7e-1b3d-4e5f-9a8c-6d0b2e4f6a81".into());
                secret.expires_at = Some(datetime!(2024-01-01 00:00 UTC));
            }
        }
    }
    for org in &mut config.organizations {
        org.pusher = Identity {
            id: "d291b0c4-a05c-4ea6-8df1-4b41d5f39eff".into(),
            display_name: "Jamal Hartnett".into(),
            unique_name: format!(
                "jamal.hartnett@{}",
                if org.tenant == OTHER_TENANT_ID {
                    "fabrikam.com"
                } else {
                    "contoso.com"
                }
            ),
        };
        match org.name.as_str() {
            ORG => {
                org.projects = vec![
                    ProjectConfig {
                        name: "Commerce".into(),
                        id: Some("6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c".into()),
                        description: Some(
                            "Online shop: order pipelines and recommendation models.".into(),
                        ),
                        visibility: Visibility::Private,
                        repos: vec![
                            shop_pipelines(),
                            ml_models(),
                            RepoConfig::new("empty-repo"),
                            legacy_archive(),
                        ],
                    },
                    ProjectConfig {
                        name: "Platform".into(),
                        id: Some("281f9a5b-af0d-49b4-a1df-fe6f5e5f84d0".into()),
                        description: Some("Shared data platform.".into()),
                        visibility: Visibility::Private,
                        repos: vec![data_platform(), platform_docs()],
                    },
                ];
            }
            "northwind" => {
                org.projects = vec![ProjectConfig {
                    name: "Research".into(),
                    id: None,
                    description: Some("Research notebooks.".into()),
                    visibility: Visibility::Private,
                    repos: vec![repo(
                        "notebooks",
                        vec![seed(
                            "Add feature registry",
                            0,
                            1,
                            vec![put("features.py", NORTHWIND_FEATURES)],
                        )],
                    )],
                }];
            }
            "tailspin" => {
                org.projects = vec![ProjectConfig {
                    name: "Ops".into(),
                    id: None,
                    description: None,
                    visibility: Visibility::Private,
                    repos: vec![RepoConfig::new("runbooks")],
                }];
            }
            _ => {
                org.projects = vec![ProjectConfig {
                    name: "Fabrikam-Fiber-Git".into(),
                    id: None,
                    description: Some("Git projects".into()),
                    visibility: Visibility::Private,
                    repos: vec![repo(
                        "Fabrikam-Fiber-Git",
                        vec![seed(
                            "Initial commit",
                            0,
                            0,
                            vec![put("README.md", "# Fabrikam Fiber\n")],
                        )],
                    )],
                }];
            }
        }
    }
    config
}

fn shop_pipelines() -> RepoConfig {
    let mut first = seed(
        "Initial import of the shop pipelines",
        0,
        0,
        vec![
            put("README.md", SHOP_README),
            put("spice.toml", SHOP_SPICE_TOML),
            put("shop/__init__.py", SHOP_INIT),
            put("shop/registries.py", SHOP_REGISTRIES),
            put("shop/users.py", SHOP_USERS),
        ],
    );
    first.tags = vec!["v0.1".into()];
    let mut third = seed(
        "Add assets and test fixtures",
        26,
        2,
        vec![
            put("shop/assets.py", SHOP_ASSETS),
            put("tests/conftest.py", SHOP_CONFTEST),
        ],
    );
    third.tags = vec!["v1.0".into()];
    let mut develop = seed(
        "Experimental: scoring pipeline (depends on an entry that does not exist yet)",
        75,
        1,
        vec![put("shop/experimental.py", SHOP_EXPERIMENTAL)],
    );
    develop.branch = Some("develop".into());
    develop.from_branch = Some("main".into());
    let seeds = vec![
        first,
        seed(
            "Add order pipelines and currency transforms",
            3,
            1,
            vec![
                put("shop/orders.py", SHOP_ORDERS),
                put("shop/transforms.py", SHOP_TRANSFORMS),
            ],
        ),
        third,
        seed(
            "Rename users module to customers",
            50,
            0,
            vec![
                FileChange::rename("shop/users.py", "shop/customers.py"),
                put(
                    "shop/orders.py",
                    &SHOP_ORDERS.replace("from shop.users import", "from shop.customers import"),
                ),
            ],
        ),
        seed(
            "Add legacy CSV export",
            73,
            1,
            vec![put("shop/legacy_export.py", SHOP_LEGACY_EXPORT)],
        ),
        seed(
            "WIP: refunds pipeline (does not parse yet)",
            74,
            2,
            vec![
                put("shop/refunds.py", SHOP_REFUNDS_BROKEN),
                put(
                    "README.md",
                    &format!("{SHOP_README}\n## Status\n\nRefunds are a work in progress.\n"),
                ),
                FileChange::delete("shop/legacy_export.py"),
            ],
        ),
        develop,
    ];
    repo("shop-pipelines", seeds)
}

fn ml_models() -> RepoConfig {
    repo(
        "ml-models",
        vec![
            seed(
                "Model zoo with backbones and heads",
                5,
                2,
                vec![
                    put("pyproject.toml", ML_PYPROJECT),
                    put("src/models/__init__.py", ML_INIT),
                    put("src/models/registry.py", ML_REGISTRY),
                    put("src/models/backbones.py", ML_BACKBONES),
                    put("src/models/heads.py", ML_HEADS),
                ],
            ),
            seed(
                "Register architectures through catalogue",
                30,
                1,
                vec![put("src/models/architectures.py", ML_ARCHITECTURES)],
            ),
        ],
    )
}

fn legacy_archive() -> RepoConfig {
    let mut archive = repo(
        "legacy-archive",
        vec![seed(
            "Archive the 2019 reporting scripts",
            -2000,
            0,
            vec![put("reports/monthly.py", LEGACY_REPORT)],
        )],
    );
    archive.disabled = true;
    archive
}

fn data_platform() -> RepoConfig {
    let latin1: Vec<u8> =
        b"# -*- coding: latin-1 -*-\n# Donn\xe9es h\xe9rit\xe9es\nVALUE = 'caf\xe9'\n".to_vec();
    let png: Vec<u8> = vec![
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    repo(
        "data-platform",
        vec![
            seed(
                "Data platform assets and ops",
                8,
                1,
                vec![
                    put("spice.toml", PLATFORM_SPICE_TOML),
                    put("platform/__init__.py", ""),
                    put(
                        "platform/assets/__init__.py",
                        "from .sales import *  # noqa: F401,F403\n",
                    ),
                    put("platform/assets/sales.py", PLATFORM_SALES),
                    put("platform/assets/marketing.py", PLATFORM_MARKETING),
                    put("platform/ops.py", PLATFORM_OPS),
                    put(
                        "third_party/site-packages/requests_stub.py",
                        "def get(url):\n    raise NotImplementedError\n",
                    ),
                    FileChange::put("platform/legacy_latin1.py", latin1),
                    FileChange::put("docs/logo.png", png),
                ],
            ),
            seed(
                "Hamilton-style feature functions",
                33,
                2,
                vec![put("platform/features.py", PLATFORM_FEATURES)],
            ),
        ],
    )
}

fn platform_docs() -> RepoConfig {
    repo(
        "platform-docs",
        vec![seed(
            "Platform documentation",
            12,
            2,
            vec![
                put(
                    "README.md",
                    "# Platform docs\n\nHow the data platform is organised.\n",
                ),
                put(
                    "docs/onboarding.md",
                    "# Onboarding\n\n1. Ask for access.\n2. Read the runbooks.\n",
                ),
            ],
        )],
    )
}

const SHOP_README: &str = "# shop-pipelines\n\nOrder and customer pipelines of the Contoso shop, registered in spice registries.\n";

const SHOP_SPICE_TOML: &str = r#"# spicehub configuration
registry_constructors = ["make_registry"]
decorator_registries = { asset = "assets", fixture = "fixtures" }
exclude = ["vendor/**"]
"#;

const SHOP_INIT: &str = r#""""Contoso shop data pipelines."""
from .registries import pipelines, transforms

__all__ = ["pipelines", "transforms"]
"#;

const SHOP_REGISTRIES: &str = r#""""Registries of the shop data platform."""
from spice import Registry

pipelines = Registry("pipelines")
transforms = Registry("transforms")
"#;

const SHOP_USERS: &str = r#"from shop.registries import pipelines


@pipelines.register
def fetch_raw():
    """Fetch raw user exports from the CRM."""
    return []


@pipelines.register(depends_on=["fetch_raw"])
def load_users(fetch_raw):
    """Load users from the CRM."""
    return [row for row in fetch_raw if row]


@pipelines.register("active_users", requires=("load_users",))
def select_active(users):
    """Keep users seen in the last 90 days."""
    return [u for u in users if u.get("active")]
"#;

const SHOP_ORDERS: &str = r#""""Order pipelines."""
from shop import pipelines
from shop.users import load_users  # noqa: F401


@pipelines.register
def fetch_orders():
    """Fetch raw orders from the web shop database."""
    return []


@pipelines.register(depends_on=["fetch_orders", "transforms:normalize_currency"])
def clean_orders(fetch_orders, normalize_currency):
    """Drop test orders and convert amounts to EUR."""
    return [normalize_currency(o) for o in fetch_orders if not o.get("test")]


@pipelines.register
def orders_per_user(clean_orders, load_users):
    """Join orders to users (edges by parameter name)."""
    by_user = {}
    for order in clean_orders:
        by_user.setdefault(order["user_id"], []).append(order)
    return by_user


class Reports:
    @pipelines.register(name="weekly_report", deps=["orders_per_user"])
    def weekly(self, orders_per_user):
        """Weekly revenue report."""
        return sum(len(v) for v in orders_per_user.values())
"#;

const SHOP_TRANSFORMS: &str = r#""""Row transforms shared by the pipelines."""
from shop.registries import transforms as T


@T.register("normalize_currency")
def to_eur(row):
    """Convert an order amount to EUR."""
    return row


def strip_pii(row):
    """Remove personal data from a row."""
    return {k: v for k, v in row.items() if k not in {"email", "phone"}}


T.register("strip_pii", strip_pii)


@T.register
class Deduplicate:
    """Drop rows already seen."""

    def __call__(self, rows):
        return list({r["id"]: r for r in rows}.values())


try:
    import pandas  # noqa: F401

    @T.register(name="to_frame")
    def to_frame(rows):
        """Rows to a pandas DataFrame."""
        return pandas.DataFrame(rows)
except ImportError:  # pragma: no cover
    pass
"#;

const SHOP_ASSETS: &str = r#""""Dagster-style assets (decorator registry `assets`, see spice.toml)."""
from dagster import asset


@asset
def raw_orders():
    """Orders as exported every night."""
    return []


@asset(name="daily_revenue")
def revenue(raw_orders):
    """Revenue per day."""
    return {}


@asset
def revenue_dashboard(daily_revenue, raw_orders):
    """Dashboard tiles."""
    return [daily_revenue, raw_orders]
"#;

const SHOP_CONFTEST: &str = r#"import pytest


@pytest.fixture
def app():
    """The web application."""
    return object()


@pytest.fixture
def db():
    """An empty database."""
    return {}


@pytest.fixture(name="client")
def make_client(app, db):
    """A test client bound to the app and the database."""
    return (app, db)
"#;

const SHOP_LEGACY_EXPORT: &str = r#"from shop.registries import pipelines


@pipelines.register(depends_on="clean_orders")
def export_csv(clean_orders):
    """Legacy CSV export (to be removed)."""
    return ""
"#;

const SHOP_REFUNDS_BROKEN: &str = r#""""Refund pipelines (work in progress)."""
from shop.registries import pipelines


@pipelines.register(depends_on=["clean_orders"])
def refunds(clean_orders:
    """Refunded orders."""
    return [o for o in clean_orders if o.get("refunded")]
"#;

const SHOP_EXPERIMENTAL: &str = r#"from shop.registries import pipelines


@pipelines.register(depends_on=["customer_scores"])
def churn_risk(customer_scores):
    """Churn risk per customer (customer_scores does not exist yet: a dangling edge)."""
    return {}
"#;

const ML_PYPROJECT: &str = r#"[project]
name = "contoso-models"
version = "0.3.0"

[tool.spice]
registry_constructors = ["Registry", "catalogue.create"]
include = ["src/**/*.py"]
"#;

const ML_INIT: &str = r#"from .registry import BACKBONES, HEADS, architectures  # re-exported

__all__ = ["BACKBONES", "HEADS", "architectures"]
"#;

const ML_REGISTRY: &str = r#""""Model registries."""
import catalogue
from spice import Registry as SpiceRegistry

BACKBONES = SpiceRegistry("backbone")
HEADS = SpiceRegistry("head", parent=BACKBONES)
architectures = catalogue.create("models", "architectures")
"#;

const ML_BACKBONES: &str = r#"from models import BACKBONES


@BACKBONES.register_module()
class ResNet:
    """Residual network backbone."""

    def __init__(self, depth=50):
        self.depth = depth


@BACKBONES.register_module(name=["resnet18", "resnet34"])
class SmallResNet(ResNet):
    """Shallow residual networks."""


class VisionTransformer:
    """ViT backbone."""


BACKBONES.register_module(module=VisionTransformer)
BACKBONES.register_module(name="vit_tiny", module=VisionTransformer)
"#;

const ML_HEADS: &str = r#"from models.registry import HEADS, BACKBONES  # noqa: F401


@HEADS("linear_head")
class LinearHead:
    """A linear classification head."""


class Zoo:
    from spice import Registry

    MODELS = Registry("zoo")

    if True:

        @MODELS.register(requires=["backbone:ResNet", "head:linear_head"])
        def classifier(self):
            """ResNet + linear head."""
            return None
"#;

const ML_ARCHITECTURES: &str = r#""""Architectures registered through catalogue."""
from models.registry import architectures


@architectures.register("tiny_cnn.v1")
def tiny_cnn(width=32):
    """A tiny convolutional network."""
    return width


@architectures.register("tiny_cnn.v2", inputs=["tiny_cnn.v1"])
def tiny_cnn_v2(width=64):
    """Wider tiny CNN."""
    return width


def build(name):
    def inner():
        @architectures.register("nested_arch")
        def nested():
            """Registered in a nested function."""
            return None

        return nested

    return inner
"#;

const LEGACY_REPORT: &str = r#"from spice import Registry

reports = Registry("reports")


@reports.register
def monthly():
    """Monthly report (2019)."""
"#;

const PLATFORM_SPICE_TOML: &str = r#"decorator_registries = { asset = "assets", op = "ops" }
exclude = ["third_party/**"]
"#;

const PLATFORM_SALES: &str = r#""""Sales assets."""
from dagster import asset

__all__ = ["sales_raw", "sales_by_region"]


@asset
def sales_raw():
    """Raw sales extracted from the ERP."""
    return []


@asset(name="sales_by_region")
def by_region(sales_raw):
    """Sales aggregated per region."""
    return {}
"#;

const PLATFORM_MARKETING: &str = r#"import dagster


@dagster.asset
def campaigns():
    """Marketing campaigns."""
    return []


@dagster.asset(name="campaign_roi")
def roi(campaigns, sales_by_region):
    """Return on investment per campaign."""
    return {}
"#;

const PLATFORM_OPS: &str = r#"from dagster import op


@op
def refresh_warehouse():
    """Refresh the warehouse tables."""


@op(name="notify")
def send_notification(refresh_warehouse):
    """Tell the team the warehouse is fresh."""
"#;

const PLATFORM_FEATURES: &str = r#""""Hamilton-style feature functions: parameters name their inputs."""
from spice import Registry

features = Registry("features")


@features.register
def spend(orders):
    """Total spend per customer."""
    return orders


@features.register
def avg_spend(spend, visits):
    """Average spend per visit."""
    return spend


@features.register
def visits():
    """Visits per customer."""
    return 0
"#;

const NORTHWIND_FEATURES: &str = r#"from spice import Registry

features = Registry("features")


@features.register
def lead_time():
    """Supplier lead time."""
"#;
