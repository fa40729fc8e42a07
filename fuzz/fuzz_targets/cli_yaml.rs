//! Arbitrary text through the offline CLI core: `offline::inject_text` and
//! `offline::check_text`, with the namespace's labels given as flags.
//!
//! Invariants: no panic; `inject` is idempotent on its own output; in an enforced
//! namespace, what `inject` prints passes `check` (except VespaSets without any
//! pod template section, which `check` refuses by design).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vespa_tls_webhook::offline::{NamespaceSource, OfflineError, check_text, inject_text};
use vespa_tls_webhook::policy::ClusterPolicy;

fn source(labels: &[&str], annotations: &[&str]) -> NamespaceSource {
    NamespaceSource {
        namespace: None,
        labels: labels.iter().map(|s| s.to_string()).collect(),
        annotations: annotations.iter().map(|s| s.to_string()).collect(),
        namespaces_file: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = ClusterPolicy::default();
    let sources = [
        (source(&["tls.vespa.ai/injection=enabled"], &[]), false),
        (
            source(
                &["tls.vespa.ai/injection=enforced"],
                &["tls.vespa.ai/ingress-issuer-name=ingress-issuer"],
            ),
            true,
        ),
    ];
    let mut warn = |_: &str| {};
    for (src, enforced) in &sources {
        let _ = check_text(text, "fuzz", &policy, src, &mut warn);
        let Ok(out) = inject_text(text, "fuzz", &policy, src, None, &mut warn) else {
            continue;
        };
        match inject_text(&out, "fuzz", &policy, src, None, &mut warn) {
            Ok(again) => assert_eq!(again, out, "inject is not idempotent\ninput:\n{text}"),
            Err(e) => panic!("inject refuses its own output: {e}\ninput:\n{text}\noutput:\n{out}"),
        }
        if *enforced {
            match check_text(&out, "fuzz", &policy, src, &mut warn) {
                Ok(_) => {}
                Err(OfflineError::Denied(lines))
                    if lines
                        .iter()
                        .all(|l| l.contains("has neither configServer nor application")) => {}
                Err(e) => {
                    panic!("check refuses inject's output: {e}\ninput:\n{text}\noutput:\n{out}")
                }
            }
        }
    }
});
