//! `webhook-config`: the shipped webhook configurations
//! (`deploy/webhook-configurations.yaml`, embedded) with a CA bundle filled in, for
//! clusters without cert-manager's cainjector.

use base64::Engine;
use serde::Deserialize;
use serde_yaml::Value as Yaml;

/// The configurations as shipped.
pub const SHIPPED: &str = include_str!("../deploy/webhook-configurations.yaml");

/// Name and namespace the shipped configurations point at.
const SHIPPED_SERVICE: (&str, &str) = ("vespa-tls-webhook", "vespa-tls-webhook");

/// Why the configurations could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookConfigError {
    /// The CA bundle holds no PEM certificate.
    #[error("--ca-bundle: no PEM certificate (-----BEGIN CERTIFICATE-----) found")]
    NotPem,
    /// The embedded file does not parse (a build defect).
    #[error("embedded webhook configurations are invalid: {0}")]
    Embedded(String),
}

/// Where the apiserver reaches the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// In-cluster Service `name` in `namespace` (also excluded from the namespace
    /// selectors in place of the shipped one).
    Service {
        /// Service namespace.
        namespace: &'a str,
        /// Service name.
        name: &'a str,
    },
    /// A URL (`https://127.0.0.1:8443`), e.g. a webhook outside the cluster; the
    /// paths `/mutate` and `/validate` are appended.
    Url(&'a str),
}

/// Render every configuration with `ca_pem` as `caBundle`, pointing at `endpoint`,
/// without the cainjector annotation.
pub fn render(ca_pem: &str, endpoint: &Endpoint<'_>) -> Result<String, WebhookConfigError> {
    let (namespace, name) = match endpoint {
        Endpoint::Service { namespace, name } => (*namespace, *name),
        Endpoint::Url(_) => SHIPPED_SERVICE,
    };
    if !ca_pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(WebhookConfigError::NotPem);
    }
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem.trim().as_bytes());
    let mut out = String::new();
    for doc in serde_yaml::Deserializer::from_str(SHIPPED) {
        // A `serde_yaml::Value`: its mappings keep the shipped file's key order
        // (serde_json's `Value` would sort them).
        let mut v =
            Yaml::deserialize(doc).map_err(|e| WebhookConfigError::Embedded(e.to_string()))?;
        if v.is_null() {
            continue;
        }
        if let Some(meta) = v.get_mut("metadata").and_then(Yaml::as_mapping_mut)
            && let Some(a) = meta.get_mut("annotations").and_then(Yaml::as_mapping_mut)
        {
            a.shift_remove("cert-manager.io/inject-ca-from");
            if a.is_empty() {
                meta.shift_remove("annotations");
            }
        }
        let hooks = v.get_mut("webhooks").and_then(Yaml::as_sequence_mut);
        for hook in hooks.into_iter().flatten() {
            let Some(config) = hook.get_mut("clientConfig").and_then(Yaml::as_mapping_mut) else {
                return Err(WebhookConfigError::Embedded(
                    "a webhook without clientConfig".into(),
                ));
            };
            config.insert("caBundle".into(), bundle.clone().into());
            if let Endpoint::Url(base) = endpoint {
                let path = config
                    .get("service")
                    .and_then(|s| s.get("path"))
                    .and_then(Yaml::as_str)
                    .unwrap_or_default()
                    .to_string();
                let url = format!("{}{path}", base.trim_end_matches('/'));
                // `url` in the place of `service`.
                *config = std::mem::take(config)
                    .into_iter()
                    .map(|(k, v)| match k.as_str() {
                        Some("service") => ("url".into(), url.clone().into()),
                        _ => (k, v),
                    })
                    .collect();
            } else if let Some(service) = config.get_mut("service").and_then(Yaml::as_mapping_mut) {
                service.insert("name".into(), name.into());
                service.insert("namespace".into(), namespace.into());
            }
            let expressions = hook
                .get_mut("namespaceSelector")
                .and_then(|s| s.get_mut("matchExpressions"))
                .and_then(Yaml::as_sequence_mut);
            for e in expressions.into_iter().flatten() {
                if e.get("key").and_then(Yaml::as_str) == Some("kubernetes.io/metadata.name") {
                    let values = e.get_mut("values").and_then(Yaml::as_sequence_mut);
                    for value in values.into_iter().flatten() {
                        if value.as_str() == Some(SHIPPED_SERVICE.1) {
                            *value = namespace.into();
                        }
                    }
                }
            }
        }
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(
            &serde_yaml::to_string(&v).map_err(|e| WebhookConfigError::Embedded(e.to_string()))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn fills_every_ca_bundle_and_service() {
        let service = Endpoint::Service {
            namespace: "tls-system",
            name: "webhook",
        };
        let out = render(PEM, &service).unwrap();
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&out)
            .map(|d| Value::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        let bundle = base64::engine::general_purpose::STANDARD.encode(PEM.trim());
        let mut hooks = 0;
        for d in &docs {
            assert!(
                crate::target::pointer(d, "/metadata/annotations/cert-manager.io~1inject-ca-from")
                    .is_none()
            );
            for h in d["webhooks"].as_array().unwrap() {
                hooks += 1;
                assert_eq!(h["clientConfig"]["caBundle"], bundle.as_str());
                assert_eq!(h["clientConfig"]["service"]["namespace"], "tls-system");
                assert_eq!(h["clientConfig"]["service"]["name"], "webhook");
                let text = h["namespaceSelector"].to_string();
                assert!(!text.contains("\"vespa-tls-webhook\""), "{text}");
            }
        }
        assert!(hooks >= 4);
        assert_eq!(render("not pem", &service), Err(WebhookConfigError::NotPem));
    }

    #[test]
    fn keeps_the_shipped_files_key_order() {
        let docs = |text: &str| -> Vec<Yaml> {
            serde_yaml::Deserializer::from_str(text)
                .map(|d| Yaml::deserialize(d).unwrap())
                .filter(|d| !d.is_null())
                .collect()
        };
        let shipped = docs(SHIPPED);
        for endpoint in [
            Endpoint::Service {
                namespace: "tls-system",
                name: "webhook",
            },
            Endpoint::Url("https://127.0.0.1:8443"),
        ] {
            let rendered = docs(&render(PEM, &endpoint).unwrap());
            assert_eq!(rendered.len(), shipped.len());
            for (a, b) in shipped.iter().zip(&rendered) {
                assert!(crate::ordered::same_order(a, b), "{endpoint:?}");
                let hook = &b["webhooks"][0];
                let first = hook.as_mapping().and_then(|m| m.keys().next());
                assert_eq!(first.and_then(Yaml::as_str), Some("name"));
            }
        }
    }

    #[test]
    fn url_endpoint_replaces_the_service() {
        let out = render(PEM, &Endpoint::Url("https://127.0.0.1:8443/")).unwrap();
        assert!(!out.contains("service:"), "{out}");
        assert!(out.contains("url: https://127.0.0.1:8443/mutate"));
        assert!(out.contains("url: https://127.0.0.1:8443/validate"));
    }
}
