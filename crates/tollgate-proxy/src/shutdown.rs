//! Worker-local shutdown signal. SIGTERM sets a process-wide flag; each worker polls it on a
//! timer (no cross-thread wake-ups on the data path) and fires this local signal, which wakes the
//! accept loops and idle keep-alive connections so they close, while in-flight requests finish.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A one-shot, single-thread broadcast.
#[derive(Default)]
pub struct LocalShutdown {
    fired: Cell<bool>,
    slots: RefCell<Slots>,
}

#[derive(Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl LocalShutdown {
    /// New signal.
    pub fn new() -> Rc<LocalShutdown> {
        Rc::new(LocalShutdown::default())
    }

    /// Fire once; wakes every waiter.
    pub fn fire(&self) {
        if self.fired.replace(true) {
            return;
        }
        let mut s = self.slots.borrow_mut();
        for w in s.wakers.iter_mut().filter_map(Option::take) {
            w.wake();
        }
    }

    /// Whether it fired.
    pub fn is_fired(&self) -> bool {
        self.fired.get()
    }

    /// A future resolving when fired.
    pub fn wait(self: &Rc<Self>) -> Wait {
        Wait {
            sig: self.clone(),
            slot: None,
        }
    }
}

/// Future returned by [`LocalShutdown::wait`]; holds one waker slot, freed on drop.
pub struct Wait {
    sig: Rc<LocalShutdown>,
    slot: Option<usize>,
}

impl Future for Wait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.sig.fired.get() {
            return Poll::Ready(());
        }
        let sig = self.sig.clone();
        let mut s = sig.slots.borrow_mut();
        match self.slot {
            Some(i) => {
                if let Some(slot) = s.wakers.get_mut(i) {
                    *slot = Some(cx.waker().clone());
                }
            }
            None => {
                let i = match s.free.pop() {
                    Some(i) => i,
                    None => {
                        s.wakers.push(None);
                        s.wakers.len() - 1
                    }
                };
                if let Some(slot) = s.wakers.get_mut(i) {
                    *slot = Some(cx.waker().clone());
                }
                self.slot = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(i) = self.slot.take() {
            let mut s = self.sig.slots.borrow_mut();
            if let Some(slot) = s.wakers.get_mut(i) {
                *slot = None;
                s.free.push(i);
            }
        }
    }
}
