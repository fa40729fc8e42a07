//! Arbitrary text as a policy file (`ClusterPolicy::from_yaml`) and as Go
//! durations (`GoDuration::from_str`, on the whole text and on each line).
//!
//! Invariants: no panic; an accepted policy's defaults give settings for the
//! namespace it was checked with; an accepted duration keeps its text, fits Go's
//! `time.Duration`, and appending `0s` does not change its length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vespa_tls_webhook::duration::GoDuration;
use vespa_tls_webhook::policy::{ClusterPolicy, NamespaceMeta};
use vespa_tls_webhook_fuzz::check_accepted_duration;

fn duration(s: &str) {
    let Ok(d) = s.parse::<GoDuration>() else {
        return;
    };
    assert_eq!(d.to_string(), s);
    check_accepted_duration(s, &d);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    duration(&text);
    for line in text.lines() {
        duration(line);
        duration(line.trim());
    }
    if let Ok(policy) = ClusterPolicy::from_yaml(&text) {
        if let Err(e) = policy.settings_for(&NamespaceMeta::named("policy-check")) {
            panic!("accepted policy refuses its own check namespace: {e:?}");
        }
        for name in ["vespa", "default", "kube-system"] {
            let ns = NamespaceMeta::named(name);
            let _ = policy.mode_for(&ns);
            let _ = policy.settings_for(&ns);
        }
        let again = policy.clone().excluding("webhook");
        assert!(again.is_excluded("webhook"));
        let _ = policy.is_label_admin("u", &["system:masters".to_string()]);
    }
});
