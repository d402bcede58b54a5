//! A redis-server of a test's own (a unix socket in a temp dir, no
//! persistence): SONiC's CONFIG_DB and STATE_DB for the sonic mirror mode.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{poll, sh, unique_id};

/// A redis-server of the test's own, killed on drop.
pub struct Redis {
    child: Option<Child>,
    dir: PathBuf,
    sock: PathBuf,
}

impl Redis {
    pub async fn start() -> Redis {
        let dir = PathBuf::from(format!("/tmp/telegen-redis-{}", unique_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("redis.sock");
        let mut r = Redis {
            child: None,
            dir,
            sock,
        };
        r.spawn().await;
        r
    }

    pub async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&self.sock)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/install-deps.sh installs it)");
        self.child = Some(child);
        let sock = self.sock.clone();
        poll(
            "redis-server to answer PING",
            Duration::from_secs(10),
            || {
                let sock = sock.clone();
                async move {
                    sh("redis-cli", &["-s", sock.to_str()?, "ping"])
                        .ok()
                        .filter(|o| o.trim() == "PONG")
                }
            },
        )
        .await
        .unwrap();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn signal(&self, sig: libc::c_int) {
        let pid = self.child.as_ref().unwrap().id() as libc::pid_t;
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    pub fn url(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    pub fn cli(&self, db: u32, args: &[&str]) -> String {
        let mut a = vec!["-s", self.sock.to_str().unwrap(), "-n"];
        let db = db.to_string();
        a.push(&db);
        a.extend_from_slice(args);
        sh("redis-cli", &a).unwrap()
    }

    /// HGETALL as sorted (field, value) pairs.
    pub fn hgetall(&self, db: u32, key: &str) -> Vec<(String, String)> {
        let out = self.cli(db, &["hgetall", key]);
        let lines: Vec<String> = out.lines().map(|l| l.to_string()).collect();
        let mut pairs: Vec<(String, String)> = lines
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect();
        pairs.sort();
        pairs
    }

    pub fn keys(&self, db: u32, pattern: &str) -> Vec<String> {
        let mut k: Vec<String> = self
            .cli(db, &["keys", pattern])
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.to_string())
            .collect();
        k.sort();
        k
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal(libc::SIGCONT);
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
