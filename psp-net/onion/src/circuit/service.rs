//! Overlay services at the last hop of a circuit.
//!
//! There are no exits: a stream opened by BEGIN ends at a named service inside the node. The
//! registry maps names to services; presence, introduction and rendezvous plug in here later.

use std::collections::HashMap;

/// One open stream at a service.
pub trait Stream: Send {
    /// Bytes from the client; anything appended to `reply` goes back on the stream.
    fn on_data(&mut self, data: &[u8], reply: &mut Vec<u8>);
}

/// The services a node offers.
pub trait ServiceRegistry: Send {
    /// Opens a stream to `service`, or `None` if there is no such service.
    fn open(&mut self, service: &str) -> Option<Box<dyn Stream>>;
}

/// `echo`: replies with every byte it receives.
#[derive(Debug, Default)]
pub struct EchoService;

impl Stream for EchoService {
    fn on_data(&mut self, data: &[u8], reply: &mut Vec<u8>) {
        reply.extend_from_slice(data);
    }
}

type Factory = Box<dyn Fn() -> Box<dyn Stream> + Send>;

/// A name → factory registry; [`Services::default`] offers `echo`.
pub struct Services(HashMap<String, Factory>);

impl Services {
    /// No services.
    pub fn empty() -> Self {
        Self(HashMap::new())
    }

    /// Adds (or replaces) a service.
    pub fn register(&mut self, name: &str, factory: impl Fn() -> Box<dyn Stream> + Send + 'static) {
        self.0.insert(name.to_owned(), Box::new(factory));
    }
}

impl Default for Services {
    fn default() -> Self {
        let mut s = Self::empty();
        s.register("echo", || Box::new(EchoService));
        s
    }
}

impl ServiceRegistry for Services {
    fn open(&mut self, service: &str) -> Option<Box<dyn Stream>> {
        self.0.get(service).map(|f| f())
    }
}
