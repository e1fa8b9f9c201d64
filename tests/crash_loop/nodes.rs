//! The servers under test: real `sessiond` processes on one database, the
//! ones marked killable killed with SIGKILL and started again, and where
//! each one listens now, for the workers.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::watch;

use super::common::ServerProcess;

/// Where each node listens: `(generation, endpoint)` while it is up
/// (the generation grows with every start), `None` while it is down.
#[derive(Clone, Debug, Default)]
pub struct Endpoints(pub Vec<Option<(u64, String)>>);

/// The nodes, by index.
pub struct Nodes {
    database: String,
    /// Each node's flags.
    flags: Vec<Vec<String>>,
    processes: Vec<Option<ServerProcess>>,
    generations: Vec<u64>,
    endpoints: watch::Sender<Endpoints>,
    /// How many times a node was killed.
    pub kills: u64,
}

impl Nodes {
    /// Starts one node per entry of `flags` on `database`.
    pub async fn start(database: &str, flags: Vec<Vec<String>>) -> Self {
        let count = flags.len();
        let (endpoints, _) = watch::channel(Endpoints(vec![None; count]));
        let mut nodes = Self {
            database: database.to_owned(),
            flags,
            processes: (0..count).map(|_| None).collect(),
            generations: vec![0; count],
            endpoints,
            kills: 0,
        };
        for node in 0..count {
            nodes.restart(node).await;
        }
        nodes
    }

    /// Where the nodes listen, now and as it changes.
    pub fn endpoints(&self) -> watch::Receiver<Endpoints> {
        self.endpoints.subscribe()
    }

    /// Starts node `node` (again) and tells the workers where it listens
    /// once it does: after its start-up recovery.
    pub async fn restart(&mut self, node: usize) {
        let flags: Vec<&str> = self.flags[node].iter().map(String::as_str).collect();
        let process = ServerProcess::spawn(&self.database, &flags).await;
        self.generations[node] += 1;
        let up = (self.generations[node], process.endpoint());
        self.processes[node] = Some(process);
        self.endpoints.send_modify(|e| e.0[node] = Some(up));
    }

    /// SIGKILL of node `node`; returns once it is dead.
    pub async fn kill(&mut self, node: usize) {
        self.endpoints.send_modify(|e| e.0[node] = None);
        let mut process = self.processes[node].take().expect("a running node");
        process.child.start_kill().expect("SIGKILL");
        process
            .child
            .wait()
            .await
            .expect("the killed node's status");
        self.kills += 1;
    }

    /// SIGTERM of every node, and their exits; panics on an unclean exit.
    pub async fn stop_all(&mut self) {
        for node in 0..self.processes.len() {
            self.endpoints.send_modify(|e| e.0[node] = None);
            if let Some(mut process) = self.processes[node].take() {
                let pid = i32::try_from(process.child.id().unwrap()).unwrap();
                kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
                let status = process.exited().await;
                assert!(
                    status.success(),
                    "node {node} exited {status:?}:\n{}",
                    process.log.borrow().as_str()
                );
            }
        }
    }

    /// The pid of node `node`, which must be up.
    pub fn pid(&self, node: usize) -> i32 {
        let process = self.processes[node].as_ref().expect("a running node");
        i32::try_from(process.child.id().unwrap()).unwrap()
    }

    /// The endpoint of node `node`, which must be up.
    pub fn endpoint(&self, node: usize) -> String {
        self.processes[node]
            .as_ref()
            .expect("a running node")
            .endpoint()
    }
}
