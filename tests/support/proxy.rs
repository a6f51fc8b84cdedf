//! A TCP proxy the tests put between the hub and a store, to fail the network the ways
//! production does: cut (every connection reset, new ones refused), black-hole (connections
//! accepted, bytes taken and never answered: a partition, where nothing errors and everything
//! hangs), delay (every chunk held back a while), and pass again (held bytes then flow, as
//! after a healed partition).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward at once.
    Pass,
    /// Forward each chunk after this long.
    Delay(Duration),
    /// Accept connections and bytes, forward nothing until the mode changes.
    BlackHole,
    /// Reset every open connection and refuse new ones.
    Cut,
}

/// Forwards to `upstream` as its [`Mode`] says.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Pass);
        let m = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if *m.borrow() == Mode::Cut {
                    continue; // refused: dropped at once
                }
                let rx = m.subscribe();
                tokio::spawn(relay(inbound, upstream, rx));
            }
        });
        Proxy { addr, mode, task }
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Takes bytes and answers nothing, on open and new connections alike.
    pub fn black_hole(&self) {
        self.mode.send_replace(Mode::BlackHole);
    }

    /// Holds every chunk back by `by`.
    pub fn delay(&self, by: Duration) {
        self.mode.send_replace(Mode::Delay(by));
    }

    /// Forwards again (what a black hole held flows on).
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Pass);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One proxied connection: connects upstream only once traffic may pass (a black-holed store
/// is not even reached), then pumps both ways until either side closes or the proxy cuts.
async fn relay(inbound: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if !passable(&mut mode).await {
        return;
    }
    let Ok(out) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = out.set_nodelay(true);
    let (ri, wi) = inbound.into_split();
    let (ro, wo) = out.into_split();
    tokio::select! {
        _ = pump(ri, wo, mode.clone()) => {}
        _ = pump(ro, wi, mode.clone()) => {}
        _ = mode.wait_for(|m| *m == Mode::Cut) => {}
    }
}

/// Waits while the mode black-holes; false once it cuts.
async fn passable(mode: &mut watch::Receiver<Mode>) -> bool {
    match mode.wait_for(|m| *m != Mode::BlackHole).await {
        Ok(m) => *m != Mode::Cut,
        Err(_) => false,
    }
}

/// Copies chunks from `from` to `to`, holding each while the mode black-holes or delays.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // A held chunk stops this pump reading, so TCP holds the rest for us.
        if !passable(&mut mode).await {
            return;
        }
        let current = *mode.borrow();
        if let Mode::Delay(by) = current {
            tokio::time::sleep(by).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
