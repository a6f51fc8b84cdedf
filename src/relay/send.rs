//! Puts the relay's datagrams on the wire with as few system calls as possible.
//!
//! A forwarded frame becomes one datagram per subscriber, each to another address, so UDP
//! segmentation offload does not apply; `sendmmsg(2)` does: one call sends up to [`BATCH`]
//! datagrams to their own destinations. Elsewhere than Linux, one `send_to` per datagram.

use std::io;

use str0m::net::Transmit;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per system call at most.
pub const BATCH: usize = 64;

/// Sends every transmit, in order. A full socket buffer is waited out (the task's other work
/// waits with it, as with a single `send_to`); a datagram the kernel refuses for another
/// reason is logged and skipped.
pub async fn send_all(socket: &UdpSocket, transmits: &[Transmit]) {
    let mut rest = transmits;
    while !rest.is_empty() {
        match socket.try_io(Interest::WRITABLE, || send_some(socket, rest)) {
            Ok(sent) => {
                metrics::counter!("relay_send_calls_total").increment(1);
                rest = &rest[sent.max(1)..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if socket.writable().await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, to = %rest[0].destination, "relay send");
                rest = &rest[1..];
            }
        }
    }
}

/// Sends a prefix of `transmits` (at least one datagram unless it fails) and says how many.
#[cfg(target_os = "linux")]
fn send_some(socket: &UdpSocket, transmits: &[Transmit]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;

    let batch = &transmits[..transmits.len().min(BATCH)];
    let addrs: Vec<socket2::SockAddr> = batch
        .iter()
        .map(|t| socket2::SockAddr::from(t.destination))
        .collect();
    let mut iovs: Vec<libc::iovec> = batch
        .iter()
        .map(|t| libc::iovec {
            iov_base: t.contents.as_ptr() as *mut libc::c_void,
            iov_len: t.contents.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = addrs
        .iter()
        .zip(iovs.iter_mut())
        .map(|(addr, iov)| {
            // SAFETY: msghdr is plain data; all-zero is a valid empty header.
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
            hdr.msg_namelen = addr.len();
            hdr.msg_iov = iov;
            hdr.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: hdr,
                msg_len: 0,
            }
        })
        .collect();
    // SAFETY: every header points into `addrs`, `iovs` and the transmits' contents, which all
    // outlive the call; the kernel only reads them (and writes `msg_len`).
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            msgs.as_mut_ptr(),
            msgs.len() as libc::c_uint,
            0,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Sends the first of `transmits`.
#[cfg(not(target_os = "linux"))]
fn send_some(socket: &UdpSocket, transmits: &[Transmit]) -> io::Result<usize> {
    let t = &transmits[0];
    socket.try_send_to(&t.contents, t.destination).map(|_| 1)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use str0m::net::Protocol;

    use super::*;

    fn transmit(to: SocketAddr, byte: u8) -> Transmit {
        Transmit {
            proto: Protocol::Udp,
            source: "127.0.0.1:1".parse().unwrap(),
            destination: to,
            contents: vec![byte; 100 + usize::from(byte)].into(),
        }
    }

    #[tokio::test]
    async fn every_datagram_reaches_its_own_destination_in_order() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (to_a, to_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // More than one batch, alternating destinations.
        let transmits: Vec<Transmit> = (0..150u8)
            .map(|i| transmit(if i % 2 == 0 { to_a } else { to_b }, i))
            .collect();
        send_all(&socket, &transmits).await;
        let mut buf = [0u8; 2048];
        for (peer, parity) in [(&a, 0u8), (&b, 1u8)] {
            for i in (0..150u8).filter(|i| i % 2 == parity) {
                let (n, from) = peer.recv_from(&mut buf).await.unwrap();
                assert_eq!(from, socket.local_addr().unwrap());
                assert_eq!(n, 100 + usize::from(i), "datagram {i} whole and in order");
                assert!(buf[..n].iter().all(|x| *x == i));
            }
        }
    }
}
