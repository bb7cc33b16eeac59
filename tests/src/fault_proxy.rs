//! A TCP proxy that injects network faults between the server and a backing service (libSQL over
//! HTTP, Redis): pass through, delay answers, stall (hold bytes without losing them), or refuse
//! (cut live connections and refuse new ones). Switchable while traffic flows.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the network between the server and the service does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Bytes flow both ways unchanged.
    Pass,
    /// Every chunk the service sends reaches the server this much later (a slow service).
    Delay(Duration),
    /// Connections open but no byte moves until the fault clears; nothing is lost, as a stalled
    /// TCP path behaves (a hung service, a network partition short of a reset).
    Stall,
    /// Live connections are cut and new ones closed at once (the service is down).
    Refuse,
}

struct Shared {
    upstream: SocketAddr,
    fault: Mutex<Fault>,
    /// Both ends of every live connection, so `Refuse` can cut them.
    live: Mutex<Vec<TcpStream>>,
    stopped: AtomicBool,
}

impl Shared {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap()
    }

    fn cut_all(&self) {
        for stream in self.live.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// A proxy on a free loopback port in front of `upstream`; stops and cuts everything on drop.
pub struct FaultProxy {
    pub port: u16,
    shared: Arc<Shared>,
}

impl FaultProxy {
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fault proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream,
            fault: Mutex::new(Fault::Pass),
            live: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        thread::spawn(move || accept_loop(listener, accepting));
        FaultProxy { port, shared }
    }

    /// `scheme://127.0.0.1:port`, to give the server instead of the service's own URL.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Switches the fault; `Refuse` also cuts every live connection.
    pub fn set(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
        if fault == Fault::Refuse {
            self.shared.cut_all();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.cut_all();
        // Wakes the accept loop so it sees `stopped`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = incoming else { continue };
        if shared.fault() == Fault::Refuse {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(service) = TcpStream::connect(shared.upstream) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = service.set_nodelay(true);
        {
            let mut live = shared.live.lock().unwrap();
            live.push(client.try_clone().unwrap());
            live.push(service.try_clone().unwrap());
        }
        let (c_read, s_write) = (client.try_clone().unwrap(), service.try_clone().unwrap());
        let to_service = shared.clone();
        thread::spawn(move || pump(c_read, s_write, &to_service, false));
        let from_service = shared.clone();
        thread::spawn(move || pump(service, client, &from_service, true));
    }
}

/// Copies `from` to `to` until either end closes, applying the current fault to each chunk;
/// `answers` marks the service-to-server direction, the one `Delay` slows.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared, answers: bool) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        loop {
            match shared.fault() {
                Fault::Stall => thread::sleep(Duration::from_millis(5)),
                Fault::Refuse => {
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                    return;
                }
                Fault::Delay(delay) if answers => {
                    thread::sleep(delay);
                    break;
                }
                Fault::Delay(_) | Fault::Pass => break,
            }
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
