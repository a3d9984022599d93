//! The console hub: fans the guest console's output out to the open terminals and keeps a
//! backlog for terminals that open later and for `consoleText()`. Plain Rust, so it is
//! tested natively.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Console output kept for terminals that open later and for `consoleText()`.
pub const CONSOLE_BACKLOG: usize = 256 * 1024;

/// A terminal's callback for console output.
pub type ConsoleListener = Rc<dyn Fn(&[u8])>;

/// Fans the guest console out to the open terminals and keeps a backlog.
#[derive(Default)]
pub struct ConsoleHub {
    backlog: RefCell<VecDeque<u8>>,
    listeners: RefCell<Vec<(u64, ConsoleListener)>>,
    next: Cell<u64>,
}

impl ConsoleHub {
    /// Output from the guest: into the backlog (the oldest bytes beyond
    /// [`CONSOLE_BACKLOG`] go) and to every listener.
    pub fn push(&self, bytes: &[u8]) {
        {
            let mut backlog = self.backlog.borrow_mut();
            backlog.extend(bytes.iter().copied());
            let excess = backlog.len().saturating_sub(CONSOLE_BACKLOG);
            backlog.drain(..excess);
        }
        let listeners: Vec<ConsoleListener> = self
            .listeners
            .borrow()
            .iter()
            .map(|(_, listener)| listener.clone())
            .collect();
        for listener in listeners {
            listener(bytes);
        }
    }

    /// Adds a listener, which first gets the backlog; it stays until the subscription is
    /// dropped.
    pub fn subscribe(self: &Rc<Self>, listener: ConsoleListener) -> ConsoleSubscription {
        let backlog: Vec<u8> = self.backlog.borrow().iter().copied().collect();
        if !backlog.is_empty() {
            listener(&backlog);
        }
        let id = self.next.get() + 1;
        self.next.set(id);
        self.listeners.borrow_mut().push((id, listener));
        ConsoleSubscription {
            hub: self.clone(),
            id,
        }
    }

    fn unsubscribe(&self, id: u64) {
        self.listeners
            .borrow_mut()
            .retain(|(other, _)| *other != id);
    }

    /// The backlog as text.
    pub fn text(&self) -> String {
        let bytes: Vec<u8> = self.backlog.borrow().iter().copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Keeps a terminal subscribed to the console; unsubscribes when dropped.
pub struct ConsoleSubscription {
    hub: Rc<ConsoleHub>,
    id: u64,
}

impl Drop for ConsoleSubscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> (Rc<RefCell<Vec<u8>>>, ConsoleListener) {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = seen.clone();
        (
            seen,
            Rc::new(move |bytes: &[u8]| sink.borrow_mut().extend_from_slice(bytes)),
        )
    }

    #[test]
    fn late_terminals_get_the_backlog_and_dropped_ones_nothing() {
        let hub = Rc::new(ConsoleHub::default());
        hub.push(b"boot ");
        let (seen, listener) = recorder();
        let subscription = hub.subscribe(listener);
        hub.push(b"login");
        assert_eq!(*seen.borrow(), b"boot login");
        drop(subscription);
        hub.push(b"!");
        assert_eq!(*seen.borrow(), b"boot login");
        assert_eq!(hub.text(), "boot login!");
    }

    #[test]
    fn the_backlog_keeps_the_newest_bytes() {
        let hub = ConsoleHub::default();
        hub.push(&vec![b'a'; CONSOLE_BACKLOG]);
        hub.push(b"bc");
        let text = hub.text();
        assert_eq!(text.len(), CONSOLE_BACKLOG);
        assert!(text.ends_with("abc"));
    }
}
