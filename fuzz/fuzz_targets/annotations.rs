//! Arbitrary namespace annotations (known `tls.vespa.ai/*` keys with interesting
//! or arbitrary values, plus arbitrary keys) → `ClusterPolicy::settings_for`.
//!
//! Invariants: no panic; a refusal lists at least one reason; accepted settings
//! round-trip through the csi-driver volume attributes
//! (`CertSpec::from_volume_attributes`), keep what the annotations asked for
//! (ingress, mixed mode), and injecting them into a blank VespaSet and Pod gives
//! objects that pass the validator under the same policy and re-inject to nothing.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use vespa_tls_webhook::inject::{apply, inject};
use vespa_tls_webhook::policy::NamespaceMeta;
use vespa_tls_webhook::settings::{CertSpec, MIXED_MODE_VALUES, PREFIX, SETTING_KEYS};
use vespa_tls_webhook::target::Kind;
use vespa_tls_webhook::validate::check;
use vespa_tls_webhook_fuzz::{pick, policies, short_string, text};

fn values(key: &str) -> &'static [&'static str] {
    match key {
        "issuer-name" | "ingress-issuer-name" => {
            &["ca-issuer", "ingress-issuer", "other", "Bad", "", "a.b"]
        }
        "issuer-kind" | "ingress-issuer-kind" => {
            &["Issuer", "ClusterIssuer", "", "Foo-Bar", "Issuer "]
        }
        "issuer-group" | "ingress-issuer-group" => {
            &["cert-manager.io", "", "example.com", "Bad", "a..b"]
        }
        "dns-names" => &[
            "*.vespa.svc.cluster.local,localhost",
            "${POD_NAME}.vespa",
            "a,,b",
            " ",
            "a, b",
            "$POD_NAMESPACE",
            "${NODE_NAME}",
            "$",
        ],
        "common-name" => &[
            "${POD_NAME}.vespa.svc.cluster.local",
            "",
            "${POD_UID",
            "$SERVICE_ACCOUNT_NAME",
            "$$",
        ],
        "duration" | "renew-before" => &[
            "720h", "72h", "1h", "90m", "1.5h", "0", "-0", "+1h", "2160h", "2161h", "1h30m", "-1h",
            "1ns", "2562047h", "2562048h", "1h1ns", ".5h", "1.h", "3us", "2µs", "59m60s", "1d",
        ],
        "key-algorithm" => &["RSA", "ECDSA", "Ed25519", "rsa", ""],
        "key-size" => &[
            "256", "384", "521", "2048", "4096", "8192", "8193", "0", "+256", "0256", "-1", "",
        ],
        "key-encoding" => &["PKCS1", "PKCS8", "pkcs8", ""],
        "fs-group" => &[
            "1000",
            "0",
            "1",
            "2147483647",
            "2147483648",
            "+1",
            "01",
            "-1",
        ],
        "config-map" | "ingress-config-map" => &[
            "vespa-config-tls",
            "vespa-config-tls-ingress",
            "Bad",
            "",
            "a.",
        ],
        "mixed-mode" => &[MIXED_MODE_VALUES[0], MIXED_MODE_VALUES[1], "true", ""],
        "bootstrap-ca" => &["true", "false", "yes", "True"],
        _ => &[],
    }
}

fn namespace(u: &mut Unstructured) -> Result<NamespaceMeta> {
    let name = text(u, &["vespa", "vespa-prod", "a", "kube-system"])?;
    let mut ns = NamespaceMeta::named(&name);
    let n = u.int_in_range(0..=8)?;
    for _ in 0..n {
        let (key, setting) = match u.int_in_range(0..=9)? {
            0 => (short_string(u)?, ""),
            1 => (format!("{PREFIX}{}", short_string(u)?), ""),
            _ => {
                let s = pick(u, &SETTING_KEYS)?;
                (format!("{PREFIX}{s}"), s)
            }
        };
        let value = text(u, values(setting))?;
        ns.annotations.insert(key, value);
    }
    Ok(ns)
}

const VESPASET: &str = r#"{
  "apiVersion": "k8s.ai.vespa/v1", "kind": "VespaSet",
  "metadata": {"name": "vespaset-sample", "namespace": "vespa"},
  "spec": {
    "configServer": {"podTemplate": {"spec": {"containers": [{"name": "vespa"}]}}},
    "application": {"image": "x"}
  }
}"#;

fn roundtrip(spec: &CertSpec) {
    let attributes = spec.volume_attributes();
    match CertSpec::from_volume_attributes(&attributes, "volumeAttributes") {
        Ok(back) => assert_eq!(
            &back, spec,
            "volume attributes do not round-trip: {attributes:?}"
        ),
        Err(e) => {
            panic!("volume attributes of accepted settings are refused: {e:?}\n{attributes:?}")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(ns) = namespace(&mut u) else { return };
    static OBJECTS: OnceLock<(Value, Value)> = OnceLock::new();
    let (vespaset, pod) = OBJECTS.get_or_init(|| {
        let vespaset = serde_json::from_str(VESPASET).unwrap_or_default();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "vespa"}]}});
        (vespaset, pod)
    });
    for (pname, policy) in policies() {
        let settings = match policy.settings_for(&ns) {
            Ok(s) => s,
            Err(errors) => {
                assert!(!errors.is_empty(), "refused without a reason");
                for e in &errors {
                    assert!(!e.to_string().is_empty());
                }
                continue;
            }
        };
        roundtrip(&settings.mtls);
        if let Some(ingress) = &settings.ingress {
            roundtrip(&ingress.cert);
        }
        let asked = |k: &str| ns.annotations.get(&format!("{PREFIX}{k}"));
        if asked("ingress-issuer-name").is_some() {
            assert!(
                settings.ingress.is_some(),
                "{pname}: ingress asked for but not set"
            );
        }
        if let Some(m) = asked("mixed-mode") {
            assert_eq!(settings.mixed_mode.as_ref(), Some(m), "{pname}: mixed mode");
        }
        assert_eq!(settings.fingerprint(), settings.clone().fingerprint());
        let allow_mixed = policy.constraints.allow_mixed_mode;
        for (kind, obj) in [(Kind::VespaSet, vespaset), (Kind::Pod, pod)] {
            let injection = match inject(obj, kind, &settings, allow_mixed) {
                Ok(i) => i,
                Err(e) => panic!("{pname}: a blank {kind:?} cannot be injected: {e}"),
            };
            let out = match apply(obj, &injection.patch) {
                Ok(o) => o,
                Err(e) => panic!("{pname}: patch does not apply: {e}"),
            };
            let findings = check(&out, kind, &settings, &policy.constraints);
            assert!(
                findings.is_empty(),
                "{pname}: injected {kind:?} fails validation: {findings:?}\n{out}"
            );
            match inject(&out, kind, &settings, allow_mixed) {
                Ok(i) => assert!(i.patch.is_empty(), "{pname}: not idempotent: {:?}", i.patch),
                Err(e) => panic!("{pname}: re-injection refused: {e}"),
            }
        }
    }
});
