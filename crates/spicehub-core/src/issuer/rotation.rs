//! When the issuer makes a new key, as a pure function of the keys it has
//! and the time, so the schedule is tested without waiting days.
//!
//! A key is published when it is made, signs only from `lead` later (Entra
//! ID caches an issuer's keys, so a key must be public well before the first
//! assertion it signs), signs for `signing`, and stays published `retain`
//! after it stops signing (an assertion lives five minutes; a day covers
//! Entra's cache too). The next key is made `lead + margin` before the
//! current one stops signing, so at most three keys are ever published: the
//! retiring one, the signing one and the next one. Only the very first key
//! (or one made after the hub was off longer than a key signs) signs at once,
//! since nothing can sign otherwise; no cache can hold an older key set
//! that lacks it but has a usable key.

/// The schedule. Times in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Published this long before it signs.
    pub lead: i64,
    /// Signs this long.
    pub signing: i64,
    /// Stays published this long after it stops signing.
    pub retain: i64,
    /// The next key is made this much earlier than strictly needed, so an
    /// hourly check never misses the moment.
    pub margin: i64,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        const DAY: i64 = 86_400;
        RotationPolicy {
            lead: DAY,
            signing: 30 * DAY,
            retain: DAY,
            margin: 2 * 3_600,
        }
    }
}

/// Never more keys published at once than this ("a handful"): a bound that
/// holds even if the schedule were misconfigured.
pub const MAX_PUBLISHED: usize = 4;

/// A stored key's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyTimes {
    pub created_at: i64,
    pub signs_from: i64,
    pub signs_until: i64,
    pub publish_until: i64,
}

impl KeyTimes {
    pub fn signs_at(&self, now: i64) -> bool {
        self.signs_from <= now && now < self.signs_until
    }

    pub fn published_at(&self, now: i64) -> bool {
        self.created_at <= now && now < self.publish_until
    }
}

/// The schedule of the key to make now, if one is due.
pub fn next_key(keys: &[KeyTimes], now: i64, policy: &RotationPolicy) -> Option<KeyTimes> {
    let schedule = |signs_from: i64| {
        let signs_until = signs_from + policy.signing;
        KeyTimes {
            created_at: now,
            signs_from,
            signs_until,
            publish_until: signs_until + policy.retain,
        }
    };
    if !keys.iter().any(|k| k.signs_at(now)) {
        return Some(schedule(now));
    }
    if keys.iter().filter(|k| k.published_at(now)).count() >= MAX_PUBLISHED {
        return None;
    }
    let last_until = keys.iter().map(|k| k.signs_until).max()?;
    (last_until - now <= policy.lead + policy.margin).then(|| schedule(now + policy.lead))
}

/// Which of `keys` signs at `now`: the newest that may.
pub fn signing_index(keys: &[KeyTimes], now: i64) -> Option<usize> {
    keys.iter()
        .enumerate()
        .filter(|(_, k)| k.signs_at(now))
        .max_by_key(|(i, k)| (k.signs_from, *i))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    /// Runs the schedule hour by hour for a year, as the hourly task does,
    /// and checks its promises at every step.
    #[test]
    fn a_year_of_hourly_rotation_keeps_every_promise() {
        let policy = RotationPolicy::default();
        let start = 1_800_000_000;
        let mut keys: Vec<KeyTimes> = Vec::new();
        let mut made = 0;
        let mut signer_changes = 0;
        let mut last_signer = None;
        for hour in 0..(365 * 24) {
            let now = start + hour * 3_600;
            if let Some(key) = next_key(&keys, now, &policy) {
                if !keys.is_empty() {
                    // Only the first key signs at once; every later one is
                    // published a full `lead` before it signs.
                    assert!(key.signs_from - now >= policy.lead, "hour {hour}");
                }
                keys.push(key);
                made += 1;
            }
            keys.retain(|k| k.publish_until > now);
            let published = keys.iter().filter(|k| k.published_at(now)).count();
            assert!(published <= 3, "hour {hour}: {published} keys published");
            let signer = signing_index(&keys, now).map(|i| keys[i]);
            let signer = signer.unwrap_or_else(|| panic!("hour {hour}: no key signs"));
            assert!(signer.published_at(now));
            if last_signer.is_some_and(|s: KeyTimes| s != signer) {
                signer_changes += 1;
                // The key that stopped being chosen stays published at
                // least as long as what it signed can be used (5 min).
                let previous = last_signer.unwrap_or(signer);
                assert!(previous.publish_until >= now + 600, "hour {hour}");
            }
            last_signer = Some(signer);
        }
        // One key a month or so, each signing in turn.
        assert!((12..=14).contains(&made), "{made} keys made");
        assert_eq!(signer_changes, made - 1);
    }

    #[test]
    fn the_first_key_signs_at_once_and_so_does_one_after_a_long_stop() {
        let policy = RotationPolicy::default();
        let first = next_key(&[], 1_000, &policy).unwrap_or_else(|| panic!("none"));
        assert_eq!(first.signs_from, 1_000);
        // Off for 40 days: the only key no longer signs, so the new one must.
        let later = 1_000 + 40 * DAY;
        let next = next_key(&[first], later, &policy).unwrap_or_else(|| panic!("none"));
        assert_eq!(next.signs_from, later);
        // Right after the first key, nothing is due.
        assert_eq!(next_key(&[first], 1_000 + DAY, &policy), None);
    }

    #[test]
    fn the_newest_key_that_may_sign_is_chosen() {
        let old = KeyTimes {
            created_at: 0,
            signs_from: 0,
            signs_until: 100,
            publish_until: 200,
        };
        let new = KeyTimes {
            created_at: 10,
            signs_from: 50,
            signs_until: 150,
            publish_until: 250,
        };
        assert_eq!(signing_index(&[old, new], 40), Some(0));
        assert_eq!(signing_index(&[old, new], 60), Some(1));
        assert_eq!(signing_index(&[new, old], 60), Some(0));
        assert_eq!(signing_index(&[old, new], 160), None);
    }
}
