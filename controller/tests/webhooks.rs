#![cfg(test)]
//! Alerts reach every webhook: real HTTP receivers on loopback, one of them failing.

use controller::webhooks::{self, Webhooks};
use rollout::ports::{Alert, AlertKind, AlertSink};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A receiver that answers every POST with `status` and keeps the bodies.
async fn receiver(status: u16) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 65536];
            let mut got = 0;
            // Read until the JSON body is complete (the alert is small: one read or two).
            loop {
                let n = socket.read(&mut buf[got..]).await.unwrap_or(0);
                got += n;
                let text = String::from_utf8_lossy(&buf[..got]).to_string();
                if n == 0 || text.ends_with('}') {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&buf[..got]).to_string();
            if let Some((_, body)) = text.split_once("\r\n\r\n") {
                seen.lock().unwrap().push(body.to_string());
            }
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (url, bodies)
}

fn alert() -> Alert {
    Alert {
        text: "sluice: shop ROLLED BACK at step 1".into(),
        kind: AlertKind::Rollback,
        rollout: "shop".into(),
        namespace: "test".into(),
        step: 1,
        percent: 50.0,
        regions: vec![],
        max_city_population: None,
        reason: "a critical check failed".into(),
        config_generation: 9,
    }
}

#[tokio::test]
async fn a_failing_webhook_does_not_stop_the_others_and_is_named() {
    let (broken, broken_seen) = receiver(500).await;
    let (working, working_seen) = receiver(200).await;
    let hooks = Webhooks {
        urls: vec![broken.clone(), working.clone()],
        client: webhooks::client().unwrap(),
    };
    let error = hooks.send(&alert()).await.unwrap_err().to_string();
    assert!(error.contains(&broken) && error.contains("500"), "{error}");
    assert!(!error.contains(&working), "{error}");
    assert_eq!(broken_seen.lock().unwrap().len(), 1);
    let delivered = working_seen.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1, "the working webhook got the alert");
    assert!(delivered[0].contains("ROLLED BACK"), "{delivered:?}");
}

#[tokio::test]
async fn an_unreachable_webhook_does_not_stop_the_others() {
    // A port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    let (working, working_seen) = receiver(204).await;
    let hooks = Webhooks {
        urls: vec![closed.clone(), working],
        client: webhooks::client().unwrap(),
    };
    let error = hooks.send(&alert()).await.unwrap_err().to_string();
    assert!(error.contains(&closed), "{error}");
    assert_eq!(working_seen.lock().unwrap().len(), 1);
}
