//! The offline CLI (`inject`, `check`) as a user runs it: the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vespa-tls-webhook"))
}

fn path(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // The binary may reject its arguments and exit before it reads stdin; the
        // write then fails with a broken pipe, which is not the test's concern: the
        // exit code and stderr below are.
        match child.stdin.take().unwrap().write_all(input.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        }
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().unwrap()
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn strip_fingerprint(mut v: Value) -> Value {
    let a = v["metadata"]["annotations"].as_object_mut().unwrap();
    assert!(a.remove("tls.vespa.ai/injected").is_some());
    v["metadata"].as_object_mut().unwrap().remove("annotations");
    v
}

const ENABLED: &str = "tls.vespa.ai/injection=enabled";

/// `inject` of `stdin` into a namespace labelled `enabled`, with `extra` flags.
fn inject_enabled(extra: &[&str], stdin: &str) -> Output {
    let mut args = vec!["inject", "-f", "-", "--namespace-label", ENABLED];
    args.extend_from_slice(extra);
    run(&args, Some(stdin))
}

#[test]
fn inject_reproduces_seed_step4_and_step5() {
    let out = run(
        &[
            "inject",
            "-f",
            &path("tests/golden/seed-step4-stripped.yaml"),
            "--namespace-label",
            ENABLED,
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = yaml_docs(&String::from_utf8(out.stdout).unwrap());
    let step4: Value = serde_yaml::from_str(
        &std::fs::read_to_string(path("tests/golden/seed-step4-vespaset.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(strip_fingerprint(docs[0].clone()), step4);

    let out = run(
        &[
            "inject",
            "-f",
            &path("tests/golden/seed-step4-stripped.yaml"),
            "--namespace-label",
            ENABLED,
            "--namespace-annotation",
            "tls.vespa.ai/ingress-issuer-name=ingress-issuer",
            "-o",
            "json",
        ],
        None,
    );
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let step5: Value = serde_yaml::from_str(
        &std::fs::read_to_string(path("tests/golden/seed-step5-vespaset.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(v["spec"]["application"], step5["spec"]["application"]);
}

/// A manifest kept in Git comes back from `inject` with its keys where they
/// were (YAML and JSON, in and out), and in the objects the injector built,
/// `name` first.
#[test]
fn inject_keeps_the_users_key_order() {
    use serde_yaml::Value as Yaml;
    use vespa_tls_webhook::ordered::same_order;
    let read = |text: &str| -> Yaml { serde_yaml::from_str(text).unwrap() };
    for file in [
        "examples/vespaset.yaml",
        "tests/golden/seed-step4-stripped.yaml",
    ] {
        let yaml = std::fs::read_to_string(path(file)).unwrap();
        let input = read(&yaml);
        let json = serde_json::to_string(&input).unwrap();
        for (stdin, format) in [(&yaml, "yaml"), (&json, "json"), (&json, "yaml")] {
            let out = inject_enabled(&["-o", format], stdin);
            assert!(out.status.success(), "{file} {format}");
            let output = read(&String::from_utf8(out.stdout).unwrap());
            assert_ne!(input, output, "{file}: TLS was injected");
            assert!(same_order(&input, &output), "{file} as {format}");
            let container = &output["spec"]["application"]["podTemplate"]["spec"]["containers"][0];
            let keys: Vec<_> = container.as_mapping().unwrap().keys().collect();
            assert_eq!(
                keys.first().and_then(|k| k.as_str()),
                Some("name"),
                "{file}"
            );
        }
    }
    // The order is the user's, not the sorted one: `configServer` is above
    // `application` in both files.
    let sorted: Yaml = serde_yaml::to_value(
        serde_yaml::from_str::<Value>(
            &std::fs::read_to_string(path("examples/vespaset.yaml")).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let input = read(&std::fs::read_to_string(path("examples/vespaset.yaml")).unwrap());
    assert!(!same_order(&input, &sorted));
}

#[test]
fn inject_reads_stdin_multi_doc_and_the_namespaces_file() {
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"vespa"},"spec":{"containers":[{"name":"vespa"}]}}"#;
    let cm =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"vespa"}}"#;
    let input = format!("{pod}\n---\n{cm}\n");
    let out = run(
        &[
            "inject",
            "-f",
            "-",
            "--namespaces",
            &path("examples/namespaces.yaml"),
        ],
        Some(&input),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = yaml_docs(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["spec"]["volumes"][0]["name"], "tls-certs");
    assert_eq!(docs[1]["kind"], "ConfigMap");
    assert!(docs[1].get("spec").is_none());
    // The default namespace in that file is unlabelled: nothing changes.
    let out = run(
        &[
            "inject",
            "-f",
            "-",
            "-n",
            "default",
            "--namespaces",
            &path("examples/namespaces.yaml"),
        ],
        Some(pod),
    );
    let docs = yaml_docs(&String::from_utf8(out.stdout).unwrap());
    assert!(docs[0]["spec"].get("volumes").is_none());
}

#[test]
fn inject_exits_1_with_the_reason_when_rejected_and_prints_nothing() {
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"vespa","env":[{"name":"VESPA_TLS_CONFIG_FILE","value":"/x"}]}]}}"#;
    let out = inject_enabled(&[], pod);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Pod default/p: denied") && err.contains("VESPA_TLS_CONFIG_FILE"),
        "{err}"
    );

    let out = inject_enabled(
        &["--namespace-annotation", "tls.vespa.ai/duration=30d"],
        pod,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls.vespa.ai/duration"));
}

#[test]
fn check_verdicts_and_exit_codes() {
    let step4 = path("tests/golden/seed-step4-vespaset.yaml");
    let stripped = path("tests/golden/seed-step4-stripped.yaml");
    let enforced = "tls.vespa.ai/injection=enforced";
    let ok = run(
        &["check", "-f", &step4, "--namespace-label", enforced],
        None,
    );
    assert!(ok.status.success());
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .contains("allowed VespaSet vespa/vespaset-sample (conformant)")
    );
    let denied = run(
        &["check", "-f", &stripped, "--namespace-label", enforced],
        None,
    );
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("missing: env var VESPA_TLS_CONFIG_FILE")
    );
    let warned = run(
        &["check", "-f", &stripped, "--namespace-label", ENABLED],
        None,
    );
    assert!(warned.status.success());
    assert!(
        String::from_utf8_lossy(&warned.stderr)
            .contains("warning: VespaSet vespa/vespaset-sample: TLS incomplete")
    );
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["inject", "-f", "/nonexistent.yaml"],
            None,
            "cannot read /nonexistent.yaml",
        ),
        (&["inject", "-f", "-"], Some("{not json"), "-:"),
        (
            &["inject", "-f", "-", "--namespace-label", "novalue"],
            Some("{}"),
            "--namespace-label \"novalue\" is not key=value",
        ),
        (
            &["check", "-f", "-", "--policy", "/nonexistent-policy"],
            Some("{}"),
            "cannot read /nonexistent-policy",
        ),
    ];
    for (args, stdin, want) in cases {
        let out = run(args, *stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad-policy.yaml");
    std::fs::File::create(&policy)
        .unwrap()
        .write_all(b"defaultMode: sometimes\n")
        .unwrap();
    let out = run(
        &["check", "-f", "-", "--policy", policy.to_str().unwrap()],
        Some("{}"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--policy: policy file is not valid"));
}

/// A reader that stops early (`inject ... | head`, `check ... 2>&1 | head`) closes
/// stdout or stderr while the binary still writes: it ends quietly with its exit
/// code instead of panicking (exit 101).
#[test]
fn a_closed_stdout_or_stderr_is_not_a_panic() {
    let doc = std::fs::read_to_string(path("tests/golden/seed-step4-stripped.yaml")).unwrap();
    // About 4 MB of output and 600 KB of warnings: far beyond a pipe buffer, so
    // the writes meet the closed pipe.
    let input = std::iter::repeat_n(doc.as_str(), 2000)
        .collect::<Vec<_>>()
        .join("\n---\n");
    for (command, closed) in [("inject", "stdout"), ("check", "stderr")] {
        let mut child = bin()
            .args([command, "-f", "-", "--namespace-label", ENABLED])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.clone();
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let mut first = [0u8; 16];
        if closed == "stdout" {
            let mut stdout = child.stdout.take().unwrap();
            std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
            assert_eq!(&first[..11], b"apiVersion:");
        } else {
            let mut stderr = child.stderr.take().unwrap();
            std::io::Read::read_exact(&mut stderr, &mut first).unwrap();
            assert_eq!(&first[..8], b"warning:");
        }
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{command}, {closed} closed: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// The binary allocates with jemalloc configured by `.cargo/config.toml` to return
/// freed pages at once (README "Decisions"): without that setting the peak under
/// concurrent large reviews is half again as high. Its thread caches are tidied
/// every 1 MiB allocated (1.2% of the instructions per review at 64 KiB). jemalloc reports the settings it
/// was built with when asked (`confirm_conf`, read from `_RJEM_MALLOC_CONF`).
#[cfg(feature = "jemalloc")]
#[test]
fn the_binary_allocates_with_jemalloc_returning_memory_at_once() {
    let out = bin()
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "confirm_conf:true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let built_in = err
        .lines()
        .find(|l| l.contains("--with-malloc-conf"))
        .unwrap_or_else(|| panic!("jemalloc did not report its settings: {err}"));
    for setting in [
        "dirty_decay_ms:0",
        "muzzy_decay_ms:0",
        "tcache_gc_incr_bytes:1048576",
    ] {
        assert!(
            built_in.contains(setting),
            "{setting} not built in: {built_in}"
        );
    }
}
