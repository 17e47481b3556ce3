//! The capability lists' unit tests: `cargo test --bin step4` runs them, no root needed.

use super::*;

/// Every capability the `caps` crate knows is either kept or dropped, never both: the
/// narration's reasons (DROPPED_CAPABILITIES) cover every capability that goes.
#[test]
fn kept_and_dropped_are_every_capability_once() {
    let kept: HashSet<Capability> = KEPT_CAPABILITIES.into_iter().collect();
    let dropped: HashSet<Capability> =
        DROPPED_CAPABILITIES.iter().map(|(capability, _)| *capability).collect();
    assert_eq!(kept.len(), KEPT_CAPABILITIES.len(), "a capability kept twice");
    assert_eq!(dropped.len(), DROPPED_CAPABILITIES.len(), "a capability dropped twice");
    let both: Vec<&Capability> = kept.intersection(&dropped).collect();
    assert!(both.is_empty(), "kept and dropped: {both:?}");
    let all: HashSet<Capability> = kept.union(&dropped).copied().collect();
    let every = caps::all();
    let missing: Vec<&Capability> = every.difference(&all).collect();
    assert!(missing.is_empty(), "neither kept nor dropped: {missing:?}");
}

/// A dropped capability is narrated with its reason; one newer than the list says so.
#[test]
fn each_dropped_capability_has_its_reason() {
    for (capability, why) in DROPPED_CAPABILITIES {
        assert_eq!(why_dropped(capability), why);
    }
    assert!(why_dropped(Capability::CAP_CHOWN).starts_with("newer than this program"));
}
