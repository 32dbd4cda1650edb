//! The client side of a connection is read by one small task that owns the read half and is
//! never cancelled. Bytes land in a shared buffer the request loop consumes from; EOF or an error
//! is recorded. This is how the relay notices a client that went away while the model is still
//! generating (so the upstream request is closed within milliseconds, not at the next token), and
//! why no pipelined byte can be lost to a dropped read future.
//!
//! `HIGH_WATER = 256 KiB`: the reader stops reading while this much is buffered and unconsumed;
//! raising it lets a client pipeline more bytes ahead of us (memory per connection), lowering it
//! only delays reads of large bodies slightly.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::BytesMut;
use monoio::io::AsyncReadRent;

const HIGH_WATER: usize = 256 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// Shared state between the reader task and the request loop of one client connection.
#[derive(Default)]
pub struct Inbound {
    st: RefCell<State>,
}

#[derive(Default)]
struct State {
    buf: BytesMut,
    eof: bool,
    error: bool,
    discard: bool,
    stop: bool,
    consumer: Option<Waker>,
    reader: Option<Waker>,
    total: u64,
}

impl Inbound {
    /// New shared state.
    pub fn new() -> Rc<Inbound> {
        Rc::new(Inbound::default())
    }

    /// Run `f` on the buffered, unconsumed bytes. Waking the reader if we made room.
    pub fn with_buf<T>(&self, f: impl FnOnce(&mut BytesMut) -> T) -> T {
        let mut st = self.st.borrow_mut();
        let before = st.buf.len();
        let out = f(&mut st.buf);
        if st.buf.len() < before
            && before >= HIGH_WATER
            && let Some(w) = st.reader.take()
        {
            w.wake();
        }
        out
    }

    /// Number of bytes buffered.
    pub fn len(&self) -> usize {
        self.st.borrow().buf.len()
    }

    /// Total bytes ever received from the client.
    pub fn total(&self) -> u64 {
        self.st.borrow().total
    }

    /// The client closed its side or the socket failed.
    pub fn is_closed(&self) -> bool {
        let st = self.st.borrow();
        st.eof || st.error
    }

    /// Wait until more than `have` bytes are buffered, or the connection closed.
    /// Returns the buffered length (equal to `have` means closed with nothing new).
    pub fn wait_more(&self, have: usize) -> impl Future<Output = usize> + '_ {
        poll_fn(move |cx| {
            let mut st = self.st.borrow_mut();
            if st.buf.len() > have || st.eof || st.error {
                return Poll::Ready(st.buf.len());
            }
            st.consumer = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    /// Resolves when the client has closed (EOF or error). Pipelined bytes do not resolve it.
    pub fn closed(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            let mut st = self.st.borrow_mut();
            if st.eof || st.error {
                return Poll::Ready(());
            }
            st.consumer = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    /// From now on received bytes are dropped (lingering close: drain until the peer's FIN).
    pub fn discard(&self) {
        let mut st = self.st.borrow_mut();
        st.discard = true;
        st.buf.clear();
        if let Some(w) = st.reader.take() {
            w.wake();
        }
    }

    /// Ask the reader task to stop after its current read.
    pub fn stop(&self) {
        let mut st = self.st.borrow_mut();
        st.stop = true;
        if let Some(w) = st.reader.take() {
            w.wake();
        }
    }
}

/// The reader task: owns the read half until EOF, error or `stop`.
pub async fn reader_task<R: AsyncReadRent>(mut rd: R, inb: Rc<Inbound>) {
    let mut tmp = BytesMut::with_capacity(READ_CHUNK);
    loop {
        // Backpressure: do not read further ahead than HIGH_WATER.
        let go = poll_fn(|cx| {
            let mut st = inb.st.borrow_mut();
            if st.stop {
                return Poll::Ready(false);
            }
            if st.buf.len() < HIGH_WATER || st.discard {
                return Poll::Ready(true);
            }
            st.reader = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        if !go {
            return;
        }
        tmp.clear();
        tmp.reserve(READ_CHUNK);
        let (res, b) = rd.read(tmp).await;
        tmp = b;
        let mut st = inb.st.borrow_mut();
        match res {
            Ok(0) => st.eof = true,
            Ok(n) => {
                st.total += n as u64;
                if !st.discard {
                    st.buf.extend_from_slice(&tmp[..n.min(tmp.len())]);
                }
            }
            Err(_) => st.error = true,
        }
        let done = st.eof || st.error;
        if let Some(w) = st.consumer.take() {
            w.wake();
        }
        if done || st.stop {
            return;
        }
    }
}
