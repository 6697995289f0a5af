//! The identifiers an admin types and the hub sends to Microsoft: a tenant,
//! an Azure DevOps organization, a GUID. Each has one `FromStr`, the only
//! place its rule lives; the admin form, the command line, the token
//! manager and the REST client all parse through it.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{0}` is not a GUID (8-4-4-4-12 hexadecimal digits)")]
    Guid(String),
    #[error("`{0}` is not a tenant: use the directory (tenant) ID or a verified domain such as contoso.onmicrosoft.com")]
    Tenant(String),
    #[error("`{0}` is not an Azure DevOps organization name (letters, digits and hyphens, at most 50, as in https://dev.azure.com/{{organization}})")]
    Organization(String),
}

/// `8-4-4-4-12` hexadecimal digits, kept lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(String);

/// A Microsoft Entra tenant: its GUID, or one of its verified domain names.
/// The multi-tenant aliases (`common`, `organizations`, `consumers`) are
/// refused: the client-credentials flow must act in one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(String);

/// The `{organization}` of `https://dev.azure.com/{organization}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrganizationName(String);

pub fn is_guid(s: &str) -> bool {
    let mut parts = 0;
    for (i, part) in s.split('-').enumerate() {
        let want = [8, 4, 4, 4, 12];
        if i >= want.len() || part.len() != want[i] || !part.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return false;
        }
        parts += 1;
    }
    parts == 5
}

impl FromStr for Guid {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let t = s.trim();
        if is_guid(t) {
            Ok(Guid(t.to_ascii_lowercase()))
        } else {
            Err(IdError::Guid(s.to_owned()))
        }
    }
}

impl FromStr for TenantId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let t = s.trim();
        if is_guid(t) {
            return Ok(TenantId(t.to_ascii_lowercase()));
        }
        let domain = t.len() <= 253
            && t.contains('.')
            && t.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if domain {
            Ok(TenantId(t.to_ascii_lowercase()))
        } else {
            Err(IdError::Tenant(s.to_owned()))
        }
    }
}

impl FromStr for OrganizationName {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let o = s.trim();
        let ok = !o.is_empty()
            && o.len() <= 50
            && o.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !o.starts_with('-')
            && !o.ends_with('-');
        if ok {
            Ok(OrganizationName(o.to_owned()))
        } else {
            Err(IdError::Organization(s.to_owned()))
        }
    }
}

macro_rules! as_str {
    ($($t:ty),*) => {$(
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}
as_str!(Guid, TenantId, OrganizationName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert!(is_guid("11111111-2222-4333-8444-555555555555"));
        assert_eq!(
            "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"
                .parse::<Guid>()
                .unwrap()
                .as_str(),
            "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
        );
        for bad in [
            "",
            "1111-2222",
            "11111111-2222-4333-8444-55555555555g",
            "11111111-2222-4333-8444-555555555555-1",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn tenants() {
        for good in [
            "11111111-2222-4333-8444-555555555555",
            "contoso.onmicrosoft.com",
            "Contoso.COM",
        ] {
            assert!(good.parse::<TenantId>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "common",
            "organizations",
            "consumers",
            "contoso",
            ".contoso.com",
            "contoso..com",
            "a b.com",
            "https://login.microsoftonline.com/x",
        ] {
            assert!(bad.parse::<TenantId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn organizations() {
        for good in ["fabrikam", "my-org-2", "A1"] {
            assert!(good.parse::<OrganizationName>().is_ok(), "{good}");
        }
        let too_long = "a".repeat(51);
        for bad in [
            "",
            "-x",
            "x-",
            "a/b",
            "two words",
            "my_org",
            "dev.azure.com",
            "https://dev.azure.com/x",
            too_long.as_str(),
        ] {
            assert!(bad.parse::<OrganizationName>().is_err(), "{bad}");
        }
    }
}
