//! What the hub accepts from the network: which peers are trusted proxies,
//! who may read `/metrics`, and the bounds on connections and requests.
//! The hub faces the internet (Azure DevOps must reach it), so every bound
//! has a safe default; `SECURITY.md` lists them.

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

use super::ConfigError;

#[derive(Args, Clone, Default)]
pub struct NetworkArgs {
    /// Comma-separated addresses or CIDR ranges of reverse proxies in front
    /// of the hub. Only a request from one of them has its client address
    /// taken from `X-Forwarded-For` (the nearest address that is not itself
    /// a trusted proxy). Empty: the peer address is the client.
    #[arg(long, env = "SPICEHUB_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// Comma-separated addresses or CIDR ranges that may read `/metrics`
    /// without a token. Default: this machine only.
    #[arg(
        long,
        env = "SPICEHUB_METRICS_ALLOW",
        default_value = "127.0.0.0/8,::1/128"
    )]
    pub metrics_allow: String,

    /// A bearer token that also opens `/metrics` (environment only).
    #[arg(skip = std::env::var("SPICEHUB_METRICS_TOKEN").ok().filter(|s| !s.is_empty()))]
    pub metrics_token: Option<String>,

    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "SPICEHUB_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Seconds the hub spends on one request before it answers 408.
    #[arg(long, env = "SPICEHUB_REQUEST_TIMEOUT_SECS", default_value_t = 120)]
    pub request_timeout_secs: u64,

    /// Open connections at once; further clients wait in the listen queue.
    #[arg(long, env = "SPICEHUB_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Password checks (Argon2, 19 MiB each) running at once. 0: twice the
    /// number of cores.
    #[arg(long, env = "SPICEHUB_SIGNIN_CONCURRENCY", default_value_t = 0)]
    pub signin_concurrency: usize,
}

impl std::fmt::Debug for NetworkArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkArgs")
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_allow", &self.metrics_allow)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("header_timeout_secs", &self.header_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("max_connections", &self.max_connections)
            .field("signin_concurrency", &self.signin_concurrency)
            .finish()
    }
}

/// The network settings, validated.
#[derive(Clone)]
pub struct Network {
    pub trusted_proxies: Vec<IpNet>,
    pub metrics_allow: Vec<IpNet>,
    pub metrics_token: Option<secrecy::SecretString>,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub signin_concurrency: usize,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_allow", &self.metrics_allow)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("header_timeout", &self.header_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .field("signin_concurrency", &self.signin_concurrency)
            .finish()
    }
}

impl Default for Network {
    fn default() -> Self {
        Network::from_args(&NetworkArgs {
            metrics_allow: "127.0.0.0/8,::1/128".into(),
            header_timeout_secs: 10,
            request_timeout_secs: 120,
            max_connections: 1024,
            ..NetworkArgs::default()
        })
        .unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

impl Network {
    pub fn from_args(args: &NetworkArgs) -> Result<Network, ConfigError> {
        if !(1..=3600).contains(&args.header_timeout_secs)
            || !(1..=86_400).contains(&args.request_timeout_secs)
        {
            return Err(ConfigError::Timeouts);
        }
        if !(1..=1_000_000).contains(&args.max_connections) {
            return Err(ConfigError::MaxConnections);
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let signin_concurrency = match args.signin_concurrency {
            0 => 2 * cores,
            n if n <= 1024 => n,
            _ => return Err(ConfigError::SigninConcurrency),
        };
        Ok(Network {
            trusted_proxies: parse_nets("SPICEHUB_TRUSTED_PROXIES", &args.trusted_proxies)?,
            metrics_allow: parse_nets("SPICEHUB_METRICS_ALLOW", &args.metrics_allow)?,
            metrics_token: args.metrics_token.clone().map(Into::into),
            header_timeout: Duration::from_secs(args.header_timeout_secs),
            request_timeout: Duration::from_secs(args.request_timeout_secs),
            max_connections: args.max_connections,
            signin_concurrency,
        })
    }

    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        contains(&self.trusted_proxies, ip)
    }

    pub fn may_read_metrics(&self, ip: IpAddr) -> bool {
        contains(&self.metrics_allow, ip)
    }

    /// The client's address: the peer, or, when the peer is a trusted
    /// proxy, the nearest `X-Forwarded-For` hop that is not one. Hops are
    /// read right to left because only the right end was written by our own
    /// proxies; whatever a client put at the left end is not believed.
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        if !self.is_trusted_proxy(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_for.rev().flat_map(|v| v.rsplit(',')) {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.is_trusted_proxy(client) {
                        break;
                    }
                }
                // A hop we cannot read ends the chain: what is left of it
                // cannot be trusted.
                Err(_) => break,
            }
        }
        client
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    nets.iter().any(|n| n.contains(&ip))
}

fn parse_nets(name: &'static str, raw: &str) -> Result<Vec<IpNet>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| ConfigError::Network(name, s.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(proxies: &str) -> Network {
        Network::from_args(&NetworkArgs {
            trusted_proxies: proxies.into(),
            metrics_allow: "127.0.0.1".into(),
            header_timeout_secs: 10,
            request_timeout_secs: 60,
            max_connections: 10,
            ..NetworkArgs::default()
        })
        .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let n = network("10.0.0.0/8, 192.168.1.1");
        // Not a proxy: the header is whatever the client wants it to be.
        assert_eq!(
            n.client_address(ip("203.0.113.9"), ["1.2.3.4"].into_iter()),
            ip("203.0.113.9")
        );
        // Through our proxy: the nearest untrusted hop, not the left end
        // (which the client wrote).
        assert_eq!(
            n.client_address(
                ip("10.1.1.1"),
                ["6.6.6.6, 198.51.100.7, 10.2.2.2"].into_iter()
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            n.client_address(ip("192.168.1.1"), ["6.6.6.6", "198.51.100.8"].into_iter()),
            ip("198.51.100.8")
        );
        // Garbage ends the chain at the last address read.
        assert_eq!(
            n.client_address(ip("10.1.1.1"), ["not-an-ip"].into_iter()),
            ip("10.1.1.1")
        );
        assert!(n.is_trusted_proxy(ip("::ffff:10.0.0.1")));
        assert!(n.may_read_metrics(ip("127.0.0.1")));
        assert!(!n.may_read_metrics(ip("127.0.0.2")));
    }

    #[test]
    fn bad_ranges_and_bounds_are_named() {
        let err = Network::from_args(&NetworkArgs {
            trusted_proxies: "10.0.0.0/99".into(),
            header_timeout_secs: 10,
            request_timeout_secs: 60,
            max_connections: 10,
            ..NetworkArgs::default()
        })
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("SPICEHUB_TRUSTED_PROXIES"),
            "{err}"
        );
        assert!(Network::from_args(&NetworkArgs {
            header_timeout_secs: 0,
            request_timeout_secs: 60,
            max_connections: 10,
            ..NetworkArgs::default()
        })
        .is_err());
        let defaults = Network::default();
        assert!(defaults.signin_concurrency >= 2);
        assert!(defaults.may_read_metrics(ip("::1")));
        assert!(defaults.trusted_proxies.is_empty());
    }
}
