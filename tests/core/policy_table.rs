//! Every annotation (valid and invalid), every mode, the constraints and the
//! policy file.

use vespa_tls_webhook::admission::Endpoint;
use vespa_tls_webhook::policy::{ClusterPolicy, Mode, NamespaceMeta, PolicyFileError};
use vespa_tls_webhook::settings::{KeyAlgorithm, SettingError};

use crate::fixtures::{Obj, ns, policy, run};

fn settings_with(
    annotations: &[(&str, &str)],
) -> Result<vespa_tls_webhook::settings::TlsSettings, Vec<SettingError>> {
    settings_under(&ClusterPolicy::default(), annotations)
}

fn settings_under(
    p: &ClusterPolicy,
    annotations: &[(&str, &str)],
) -> Result<vespa_tls_webhook::settings::TlsSettings, Vec<SettingError>> {
    let mut n = ns("team", "enabled");
    for (k, v) in annotations {
        n = n.with_annotation(&format!("tls.vespa.ai/{k}"), v);
    }
    p.settings_for(&n)
}

fn attr(s: &vespa_tls_webhook::settings::TlsSettings, key: &str) -> Option<String> {
    s.mtls
        .volume_attributes()
        .get(&format!("csi.cert-manager.io/{key}"))
        .map(|v| v.as_str().unwrap().to_string())
}

#[test]
fn defaults_reproduce_the_seed_for_any_namespace_name() {
    let s = settings_with(&[]).unwrap();
    let expect = [
        ("issuer-name", "ca-issuer"),
        ("issuer-kind", "Issuer"),
        ("issuer-group", "cert-manager.io"),
        ("dns-names", "*.team.svc.cluster.local,localhost"),
        ("common-name", "${POD_NAME}.team.svc.cluster.local"),
        ("duration", "720h"),
        ("renew-before", "72h"),
        ("fs-group", "1000"),
        ("key-algorithm", "ECDSA"),
        ("key-size", "256"),
        ("key-encoding", "PKCS8"),
    ];
    for (k, v) in expect {
        assert_eq!(attr(&s, k).as_deref(), Some(v), "{k}");
    }
    assert_eq!(s.mtls.volume_attributes().len(), expect.len());
    assert_eq!(s.config_map, "vespa-config-tls");
    assert!(s.ingress.is_none());
    assert!(s.mixed_mode.is_none());
    assert!(!s.bootstrap_ca);
}

/// (annotation, value, attribute checked, expected attribute value)
const VALID: &[(&str, &str, &str, Option<&str>)] = &[
    ("issuer-name", "team-ca", "issuer-name", Some("team-ca")),
    (
        "issuer-kind",
        "ClusterIssuer",
        "issuer-kind",
        Some("ClusterIssuer"),
    ),
    (
        "issuer-group",
        "awspca.cert-manager.io",
        "issuer-group",
        Some("awspca.cert-manager.io"),
    ),
    (
        "dns-names",
        "*.team.svc,${POD_NAME}.team",
        "dns-names",
        Some("*.team.svc,${POD_NAME}.team"),
    ),
    (
        "common-name",
        "${POD_NAME}.${POD_NAMESPACE}",
        "common-name",
        Some("${POD_NAME}.${POD_NAMESPACE}"),
    ),
    ("duration", "2160h", "duration", Some("2160h")),
    ("duration", "100h30m", "duration", Some("100h30m")),
    ("renew-before", "90m", "renew-before", Some("90m")),
    ("key-algorithm", "RSA", "key-size", Some("2048")),
    ("key-algorithm", "Ed25519", "key-size", None),
    ("key-size", "384", "key-size", Some("384")),
    ("key-size", "521", "key-size", Some("521")),
    ("key-encoding", "PKCS8", "key-encoding", Some("PKCS8")),
    ("fs-group", "2000", "fs-group", Some("2000")),
];

#[test]
fn valid_annotations_reach_the_volume_attributes() {
    for (key, value, attribute, expected) in VALID {
        let s = settings_with(&[(key, value)])
            .unwrap_or_else(|e| panic!("{key}={value} refused: {e:?}"));
        assert_eq!(attr(&s, attribute).as_deref(), *expected, "{key}={value}");
    }
}

#[test]
fn combined_valid_annotations() {
    let s = settings_with(&[
        ("key-algorithm", "RSA"),
        ("key-size", "4096"),
        ("key-encoding", "PKCS1"),
    ])
    .unwrap();
    assert_eq!(s.mtls.key_algorithm, KeyAlgorithm::Rsa);
    assert_eq!(attr(&s, "key-size").as_deref(), Some("4096"));
    assert_eq!(attr(&s, "key-encoding").as_deref(), Some("PKCS1"));
    let s = settings_with(&[
        ("config-map", "team-tls"),
        ("ingress-issuer-name", "pub"),
        ("ingress-issuer-kind", "ClusterIssuer"),
        ("ingress-config-map", "team-tls-in"),
    ])
    .unwrap();
    assert_eq!(s.config_map, "team-tls");
    let ing = s.ingress.unwrap();
    assert_eq!(ing.cert.issuer.name, "pub");
    assert_eq!(ing.cert.issuer.kind, "ClusterIssuer");
    assert_eq!(ing.config_map, "team-tls-in");
    assert_eq!(ing.cert.duration, s.mtls.duration);
    assert!(
        settings_with(&[("bootstrap-ca", "true")])
            .unwrap()
            .bootstrap_ca
    );
    assert!(
        !settings_with(&[("bootstrap-ca", "false")])
            .unwrap()
            .bootstrap_ca
    );
}

/// (annotations, substring of what is accepted)
const INVALID: &[(&[(&str, &str)], &str)] = &[
    (&[("issuer-name", "Team_CA")], "Kubernetes object name"),
    (
        &[("issuer-kind", "Cluster Issuer")],
        "Issuer or ClusterIssuer",
    ),
    (&[("issuer-group", "Not A Group")], "API group"),
    (&[("dns-names", "a.svc,,b.svc")], "without empty entries"),
    (&[("dns-names", "${NODE_NAME}.svc")], "unknown variable"),
    (&[("common-name", "$HOSTNAME")], "unknown variable"),
    (&[("duration", "30d")], "Go duration"),
    (&[("duration", "720")], "Go duration"),
    (&[("duration", "0s")], "positive Go duration"),
    (&[("duration", "-1h")], "Go duration"),
    (&[("renew-before", "720h")], "below duration 720h"),
    (&[("renew-before", "1000h")], "below duration 720h"),
    (
        &[("duration", "48h"), ("renew-before", "72h")],
        "below duration 48h",
    ),
    (&[("key-algorithm", "DSA")], "RSA, ECDSA, Ed25519"),
    (&[("key-algorithm", "ecdsa")], "RSA, ECDSA, Ed25519"),
    (&[("key-size", "512")], "256, 384 or 521"),
    (&[("key-size", "big")], "number of bits"),
    (
        &[("key-algorithm", "RSA"), ("key-size", "1024")],
        "2048 to 8192",
    ),
    (
        &[("key-algorithm", "RSA"), ("key-size", "16384")],
        "2048 to 8192",
    ),
    (
        &[("key-algorithm", "Ed25519"), ("key-size", "256")],
        "no key-size",
    ),
    (
        &[("key-encoding", "PKCS1")],
        "only valid with key-algorithm RSA",
    ),
    (&[("key-encoding", "DER")], "PKCS1 (RSA only) or PKCS8"),
    (&[("fs-group", "0")], "group id from 1"),
    (&[("fs-group", "abc")], "group id from 1"),
    (&[("fs-group", "-5")], "group id from 1"),
    (&[("config-map", "Vespa TLS")], "Kubernetes object name"),
    (
        &[("ingress-issuer-name", "Bad Issuer")],
        "Kubernetes object name",
    ),
    (
        &[("ingress-issuer-name", "ok"), ("ingress-issuer-kind", "")],
        "Issuer or ClusterIssuer",
    ),
    (
        &[
            ("ingress-issuer-name", "ok"),
            ("ingress-config-map", "-bad-"),
        ],
        "Kubernetes object name",
    ),
    (&[("mixed-mode", "yes")], "plaintext_client_mixed_server"),
    (
        &[("mixed-mode", "tls_client_mixed_server")],
        "allowMixedMode: false",
    ),
    (&[("bootstrap-ca", "yes")], "\"true\" or \"false\""),
    (&[("isuer-name", "ca-issuer")], "unknown annotation"),
];

#[test]
fn invalid_annotations_are_refused_naming_annotation_value_and_what_is_accepted() {
    for (annotations, accepted) in INVALID {
        let errors = settings_with(annotations)
            .err()
            .unwrap_or_else(|| panic!("{annotations:?} accepted"));
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let text = text.join("; ");
        let (key, value) = annotations.last().unwrap();
        let hit = errors.iter().any(|e| {
            let t = e.to_string();
            t.contains(&format!("tls.vespa.ai/{key}"))
                && t.contains(&format!("{value:?}"))
                && t.contains(accepted)
        }) || (key == &"renew-before" || key == &"key-size") && text.contains(accepted);
        assert!(
            hit,
            "{annotations:?}: message {text:?} lacks annotation, value or {accepted:?}"
        );
    }
}

#[test]
fn an_invalid_annotation_denies_the_object_in_enabled_and_enforced() {
    for mode in ["enabled", "enforced"] {
        let n = ns("vespa", mode).with_annotation("tls.vespa.ai/duration", "30d");
        for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
            let d = run(
                endpoint,
                Obj::vespaset().json(),
                &n,
                &ClusterPolicy::default(),
            );
            assert!(!d.allowed, "{mode} {endpoint:?}");
            assert_eq!(d.reason, "invalid-settings");
            assert!(
                d.message.contains("tls.vespa.ai/duration") && d.message.contains("\"30d\""),
                "{}",
                d.message
            );
        }
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    let errors = settings_with(&[
        ("duration", "x"),
        ("key-encoding", "DER"),
        ("fs-group", "0"),
    ])
    .unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:?}");
}

#[test]
fn modes_from_the_label_and_the_default() {
    let p = ClusterPolicy::default();
    let cases = [
        (Some("enabled"), Ok(Mode::Enabled)),
        (Some("enforced"), Ok(Mode::Enforced)),
        (Some("disabled"), Ok(Mode::Disabled)),
        (None, Ok(Mode::Disabled)),
    ];
    for (label, want) in cases {
        let mut n = NamespaceMeta::named("x");
        if let Some(l) = label {
            n = n.with_label("tls.vespa.ai/injection", l);
        }
        assert_eq!(p.mode_for(&n), want, "{label:?}");
    }
    let err = p.mode_for(&ns("x", "on")).unwrap_err().to_string();
    assert!(
        err.contains("tls.vespa.ai/injection")
            && err.contains("\"on\"")
            && err.contains("enabled, enforced or disabled"),
        "{err}"
    );
    let enforcing = policy("defaultMode: enforced\n");
    assert_eq!(
        enforcing.mode_for(&NamespaceMeta::named("x")),
        Ok(Mode::Enforced)
    );
    assert_eq!(enforcing.mode_for(&ns("x", "disabled")), Ok(Mode::Disabled));
    assert_eq!(
        enforcing.mode_for(&ns("kube-system", "enforced")),
        Ok(Mode::Disabled)
    );
}

#[test]
fn excluded_namespaces_are_never_touched() {
    let p = policy("defaultMode: enforced\nexcludedNamespaces: [infra]\n")
        .excluding("vespa-tls-webhook");
    for name in ["infra", "vespa-tls-webhook"] {
        for endpoint in [Endpoint::Mutate, Endpoint::Validate] {
            let d = run(endpoint, Obj::vespaset().json(), &ns(name, "enforced"), &p);
            assert!(d.allowed && d.patch.is_empty(), "{name}");
            assert_eq!(d.reason, "namespace-excluded");
        }
    }
    // Listing excludedNamespaces replaces the built-in list.
    assert!(!p.is_excluded("kube-system"));
    assert!(ClusterPolicy::default().is_excluded("kube-node-lease"));
}

const CONSTRAINED: &str = r#"
constraints:
  allowedIssuers:
    - {name: ca-issuer, kind: Issuer}
    - {name: corp-ca, kind: ClusterIssuer}
  maxDuration: 2160h
  minRenewBefore: 24h
  allowedKeyAlgorithms: [ECDSA, RSA]
"#;

#[test]
fn constraints_bound_what_namespaces_choose() {
    let p = policy(CONSTRAINED);
    assert!(
        settings_under(
            &p,
            &[("issuer-name", "corp-ca"), ("issuer-kind", "ClusterIssuer")]
        )
        .is_ok()
    );
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("issuer-name", "rogue")],
            "allowed issuers: ca-issuer (Issuer), corp-ca (ClusterIssuer)",
        ),
        (&[("issuer-name", "corp-ca")], "allowed issuers"),
        (&[("ingress-issuer-name", "rogue")], "allowed issuers"),
        (&[("duration", "2161h")], "maxDuration is 2160h"),
        (&[("renew-before", "23h")], "minRenewBefore is 24h"),
        (
            &[("key-algorithm", "Ed25519")],
            "allowedKeyAlgorithms: ECDSA, RSA",
        ),
    ];
    for (annotations, allowed) in cases {
        let errors = settings_under(&p, annotations).unwrap_err();
        let text = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        assert!(
            text.contains(allowed) && text.contains("not allowed by the cluster policy"),
            "{annotations:?}: {text}"
        );
        assert!(
            text.contains(&format!("tls.vespa.ai/{}", annotations[0].0)),
            "{text}"
        );
    }
}

#[test]
fn overrides_opt_out_and_mixed_mode_switches() {
    let locked = policy("constraints:\n  allowNamespaceOverrides: false\n");
    let errors = settings_under(&locked, &[("duration", "100h")]).unwrap_err();
    assert!(
        errors[0]
            .to_string()
            .contains("allowNamespaceOverrides: false")
    );
    assert!(settings_under(&locked, &[]).is_ok());

    let mixed = policy("constraints:\n  allowMixedMode: true\n");
    let s = settings_under(&mixed, &[("mixed-mode", "tls_client_mixed_server")]).unwrap();
    assert_eq!(s.mixed_mode.as_deref(), Some("tls_client_mixed_server"));
}

#[test]
fn policy_defaults_layer_over_builtins_and_key_size_follows_algorithm() {
    let p = policy(
        "defaults:\n  duration: 1000h\n  key-size: 384\n  issuer-name: corp\n  dns-names: '*.{namespace}.example.com'\n",
    );
    let s = settings_with_policy(&p, &[]);
    assert_eq!(attr(&s, "duration").as_deref(), Some("1000h"));
    assert_eq!(attr(&s, "key-size").as_deref(), Some("384"));
    assert_eq!(attr(&s, "issuer-name").as_deref(), Some("corp"));
    assert_eq!(attr(&s, "dns-names").as_deref(), Some("*.team.example.com"));
    // The namespace switches to RSA without a size: RSA's default, not 384.
    let s = settings_with_policy(&p, &[("key-algorithm", "RSA")]);
    assert_eq!(attr(&s, "key-size").as_deref(), Some("2048"));
}

fn settings_with_policy(
    p: &ClusterPolicy,
    a: &[(&str, &str)],
) -> vespa_tls_webhook::settings::TlsSettings {
    settings_under(p, a).unwrap()
}

#[test]
fn policy_file_is_validated() {
    let full = std::fs::read_to_string(crate::fixtures::repo_path("examples/policy.yaml")).unwrap();
    let p = ClusterPolicy::from_yaml(&full).unwrap();
    assert_eq!(p.default_mode, Mode::Disabled);
    assert!(p.is_label_admin("someone", &["system:masters".to_string()]));
    assert!(!p.is_label_admin("someone", &["dev".to_string()]));
    assert_eq!(
        ClusterPolicy::from_yaml("").unwrap(),
        ClusterPolicy::default()
    );

    let bad: &[(&str, &str)] = &[
        ("defaultMode: on\n", "unknown variant"),
        ("defaultMod: enabled\n", "unknown field"),
        (
            "defaults:\n  durations: 1h\n",
            "defaults.durations is not a known setting",
        ),
        (
            "defaults:\n  duration: 30d\n",
            "cluster policy defaults.duration",
        ),
        (
            "defaults:\n  issuer-name: rogue\nconstraints:\n  allowedIssuers: [{name: ca-issuer}]\n",
            "not allowed",
        ),
        (
            "constraints:\n  maxDuration: 1h\n  minRenewBefore: 2h\n",
            "must be below",
        ),
        (
            "constraints:\n  maxDuration: forever\n",
            "constraints.maxDuration",
        ),
        (
            "constraints:\n  allowedKeyAlgorithms: [DSA]\n",
            "allowedKeyAlgorithms",
        ),
        ("excludedNamespaces: [Not_A_Name]\n", "excludedNamespaces"),
        ("[1, 2", "not valid"),
    ];
    for (yaml, want) in bad {
        let e = ClusterPolicy::from_yaml(yaml).unwrap_err();
        assert!(e.to_string().contains(want), "{yaml:?}: {e}");
    }
    assert!(matches!(
        ClusterPolicy::from_yaml("defaults:\n  duration: 30d\n"),
        Err(PolicyFileError::Defaults(_))
    ));
}

/// The admission path reads a namespace as `NamespaceMeta::policy_view`: only
/// the injection label and the `tls.vespa.ai/` annotations. For every mode and
/// annotation, valid, unknown or not allowed, the policy decides the same on it
/// as on the whole metadata.
#[test]
fn the_policy_view_of_a_namespace_decides_like_the_whole() {
    let locked = policy("constraints:\n  allowNamespaceOverrides: false\n");
    for p in [ClusterPolicy::default(), locked] {
        for mode in ["enabled", "enforced", "disabled", "bogus"] {
            for ours in [
                vec![],
                vec![("tls.vespa.ai/issuer-name", "other")],
                vec![("tls.vespa.ai/key-algorithm", "RSA")],
                vec![("tls.vespa.ai/no-such-setting", "x")],
                vec![("tls.vespa.ai/duration", "not a duration")],
            ] {
                let mut whole = ns("team", mode)
                    .with_label("kubernetes.io/metadata.name", "team")
                    .with_label("tls.vespa.ai/other", "x")
                    .with_annotation("kubectl.kubernetes.io/last-applied-configuration", "{}")
                    .with_annotation("tls.vespa.ai.example/x", "y");
                for (k, v) in &ours {
                    whole = whole.with_annotation(k, v);
                }
                let view =
                    NamespaceMeta::policy_view(&whole.name, &whole.labels, &whole.annotations);
                assert_eq!(view.labels.len(), 1, "{view:?}");
                assert_eq!(view.annotations.len(), ours.len(), "{view:?}");
                assert_eq!(p.mode_for(&view), p.mode_for(&whole));
                assert_eq!(p.settings_for(&view), p.settings_for(&whole));
            }
        }
    }
}
