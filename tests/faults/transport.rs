//! Hostile transport against the real binary: plain HTTP and TLS 1.0/1.1 on the
//! TLS port are refused while other clients keep being served; a 16 MiB body gets
//! 413 quickly without the process growing.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::{
    Conn, Load, Webhook, closed_within, mutate_enabled, read_response, send, serial,
    validate_enforced_denied,
};

/// A minimal ClientHello offering only `version` (no supported_versions
/// extension), as a TLS 1.0/1.1-only client sends it.
fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut hello = Vec::new();
    hello.extend_from_slice(&version); // client_version
    hello.extend_from_slice(&[0x5a; 32]); // random
    hello.push(0); // session_id
    let suites: [[u8; 2]; 4] = [[0xc0, 0x09], [0xc0, 0x13], [0x00, 0x2f], [0x00, 0x35]];
    hello.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        hello.extend_from_slice(&s);
    }
    hello.extend_from_slice(&[1, 0]); // compression: null
    let extensions: Vec<u8> = [
        // supported_groups: x25519, secp256r1
        &[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17][..],
        // ec_point_formats: uncompressed
        &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00][..],
    ]
    .concat();
    hello.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    hello.extend_from_slice(&extensions);

    let mut handshake = vec![0x01]; // client_hello
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01]; // handshake record, TLS 1.0 framing
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// Alert descriptions (RFC 8446 §6).
const PROTOCOL_VERSION: u8 = 70;
const HANDSHAKE_FAILURE: u8 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_and_old_tls_are_refused_while_others_are_served() {
    let _serial = serial().await;
    let w = Webhook::start(&[]).await;
    let load = Load::start(
        &w.base(),
        || w.ca.client_config(),
        &[Conn::KeepAlive, Conn::NewPerRequest],
        &[mutate_enabled(), validate_enforced_denied()],
    );

    for round in 0..3 {
        // Plain HTTP on the TLS port: closed (at most a TLS alert), never an HTTP answer.
        let mut tcp = TcpStream::connect(w.addr).await.unwrap();
        tcp.write_all(
            b"POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
        )
        .await
        .unwrap();
        let started = Instant::now();
        let (closed, reply) = closed_within(&mut tcp, Duration::from_secs(3)).await;
        assert!(closed, "plain HTTP: connection left open");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "plain HTTP: closed after {:?}",
            started.elapsed()
        );
        assert!(
            reply.is_empty() || reply[0] == 0x15,
            "plain HTTP got something other than a TLS alert: {:?}",
            String::from_utf8_lossy(&reply)
        );

        // TLS 1.1 and 1.0 ClientHellos: a fatal protocol_version alert, then close.
        for (name, version) in [("TLS 1.1", [3, 2]), ("TLS 1.0", [3, 1])] {
            let mut tcp = TcpStream::connect(w.addr).await.unwrap();
            tcp.write_all(&legacy_client_hello(version)).await.unwrap();
            let (closed, reply) = closed_within(&mut tcp, Duration::from_secs(3)).await;
            assert!(closed, "{name}: connection left open");
            if round == 0 {
                eprintln!("{name} ClientHello answered with {reply:02x?}");
            }
            // alert record: 0x15, version (2), length 2, level fatal (2), description
            assert!(
                reply.len() >= 7 && reply[0] == 0x15 && reply[3..5] == [0, 2] && reply[5] == 2,
                "{name}: no fatal alert: {reply:02x?}"
            );
            assert!(
                [PROTOCOL_VERSION, HANDSHAKE_FAILURE].contains(&reply[6]),
                "{name}: alert {}",
                reply[6]
            );
        }
    }

    // A real TLS 1.1 client, where openssl is installed and still able to speak it.
    match Command::new("openssl")
        .args(["s_client", "-connect", &w.addr.to_string(), "-tls1_1"])
        .args(["-cipher", "DEFAULT:@SECLEVEL=0", "-servername", "localhost"])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => eprintln!("openssl not run ({e}); the hand-made ClientHellos above stand"),
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !out.status.success() || text.contains("Cipher is (NONE)"),
                "openssl -tls1_1 connected:\n{text}"
            );
            if text.contains("no protocols available") || text.contains("unsupported protocol") {
                eprintln!(
                    "openssl here cannot offer TLS 1.1 at all; the hand-made ClientHellos above stand"
                );
            } else {
                assert!(
                    text.contains("alert protocol version") || text.contains("handshake failure"),
                    "openssl -tls1_1: no protocol alert from the server:\n{text}"
                );
                eprintln!("openssl s_client -tls1_1 refused by the server (alert)");
            }
        }
    }

    let stats = load.stop().await;
    stats.assert_no_failures("other clients meanwhile");
    assert!(stats.ok() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_body_gets_413_quickly_with_bounded_memory() {
    let _serial = serial().await;
    let w = Webhook::start(&[]).await;
    let hwm_start = w.status_kib("VmHWM");
    let huge = vec![b' '; 16 * 1024 * 1024];

    // Declared in Content-Length.
    let client = w.client(Conn::NewPerRequest);
    for _ in 0..3 {
        let started = Instant::now();
        let r = client
            .post(w.url("/mutate"))
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(r.status(), 413);
        let text = r.text().await.unwrap();
        assert!(text.contains("exceeds"), "{text}");
        eprintln!("16 MiB body (Content-Length): 413 after {took:?}");
        assert!(took < Duration::from_secs(3), "413 after {took:?}");
    }

    // Chunked, no length: cut off once past the limit.
    let mut tls = w.tls_connect().await;
    send(
        &mut tls,
        b"POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
    )
    .await;
    let (mut rd, mut wr) = tokio::io::split(tls);
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 256 * 1024];
        for _ in 0..64 {
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            if wr.write_all(&framed).await.is_err() {
                return;
            }
        }
        let _ = wr.write_all(b"0\r\n\r\n").await;
        // TLS may hold the tail of a write when the socket is full (a slow,
        // loaded server): without a flush the body's end could stay here and
        // the server would wait for it until its read timeout.
        let _ = wr.flush().await;
    });
    let r = read_response(&mut rd, Duration::from_secs(10))
        .await
        .expect("an answer to the chunked 16 MiB body");
    let took = started.elapsed();
    assert_eq!(r.status, 413, "{}", r.head);
    eprintln!("16 MiB body (chunked): 413 after {took:?}");
    assert!(took < Duration::from_secs(3), "413 after {took:?}");
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;

    // Still serving.
    let ok = w
        .client(Conn::KeepAlive)
        .post(w.url("/mutate"))
        .body(mutate_enabled().body.as_ref().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let hwm = w.status_kib("VmHWM");
    eprintln!("16 MiB bodies: VmHWM {hwm_start} KiB at start, {hwm} KiB after");
    assert!(
        hwm < 64 * 1024,
        "VmHWM {hwm} KiB after 16 MiB bodies (start {hwm_start} KiB)"
    );
}
