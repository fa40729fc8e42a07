//! `webhook-config`: the shipped webhook configurations
//! (`deploy/webhook-configurations.yaml`, embedded) with a CA bundle filled in, for
//! clusters without cert-manager's cainjector.

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

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
        let mut v =
            Value::deserialize(doc).map_err(|e| WebhookConfigError::Embedded(e.to_string()))?;
        if v.is_null() {
            continue;
        }
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut)
            && let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut)
        {
            a.remove("cert-manager.io/inject-ca-from");
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
        for hook in v
            .get_mut("webhooks")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let config = &mut hook["clientConfig"];
            config["caBundle"] = Value::String(bundle.clone());
            if let Endpoint::Url(base) = endpoint {
                let path = crate::target::pointer(config, "/service/path")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(c) = config.as_object_mut() {
                    c.remove("service");
                    c.insert(
                        "url".into(),
                        Value::String(format!("{}{path}", base.trim_end_matches('/'))),
                    );
                }
            } else if let Some(service) = config.get_mut("service").and_then(Value::as_object_mut) {
                service.insert("name".into(), Value::String(name.into()));
                service.insert("namespace".into(), Value::String(namespace.into()));
            }
            let expressions = hook
                .pointer_mut("/namespaceSelector/matchExpressions")
                .and_then(Value::as_array_mut);
            for e in expressions.into_iter().flatten() {
                if e["key"] == "kubernetes.io/metadata.name" {
                    for value in e["values"].as_array_mut().into_iter().flatten() {
                        if value == SHIPPED_SERVICE.1 {
                            *value = Value::String(namespace.into());
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
    fn url_endpoint_replaces_the_service() {
        let out = render(PEM, &Endpoint::Url("https://127.0.0.1:8443/")).unwrap();
        assert!(!out.contains("service:"), "{out}");
        assert!(out.contains("url: https://127.0.0.1:8443/mutate"));
        assert!(out.contains("url: https://127.0.0.1:8443/validate"));
    }
}
