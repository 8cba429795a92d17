//! Signal Fish room codes in Redis: the hash `{prefix}:rooms` (code → the node holding the
//! room, `HSETNX`, so that a code names one room in the whole cluster). The dialect asks here
//! where a room lives; its players' frames then cross through its own broker messages.

use std::time::Duration;

use redis::AsyncCommands;

use super::Cluster;

/// How long a room lookup or claim may wait for Redis before the player is told.
const ROOM_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// Moves a room claim from a node that is gone to this one, only if the dead node still holds it.
const TAKE_OVER: &str = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 else return 0 end";
/// Tries to find a free code for a new room before giving up.
const CLAIM_TRIES: usize = 8;

/// Where a room lives, as Redis says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On this node (`Some(code)`: a code this node just claimed for a new room).
    Here(Option<String>),
    There(String),
    /// Nowhere yet, and the request only joins.
    Nowhere,
}

impl Cluster {
    /// Where the room with `code` lives. With `claim`, a code no node holds is claimed for
    /// this node (the caller then creates the room).
    pub async fn place_room(&self, code: &str, claim: bool) -> redis::RedisResult<Placement> {
        let mut conn = self.commands.clone();
        let lookup = async {
            if claim {
                let claimed: bool = conn.hset_nx(&self.keys.rooms, code, &self.node_id).await?;
                if claimed {
                    return Ok(Placement::Here(Some(code.to_owned())));
                }
            }
            let owner: Option<String> = conn.hget(&self.keys.rooms, code).await?;
            let Some(owner) = owner else {
                return Ok(Placement::Nowhere);
            };
            if owner == self.node_id {
                return Ok(Placement::Here(None));
            }
            // A claim outlives its node until a survivor notices the lapsed heartbeat and frees
            // it; the heartbeat key itself says at once whether the holder still lives. Its
            // room went with it, so the code is free.
            let alive: bool = conn.exists(self.keys.node(&owner)).await?;
            if alive {
                return Ok(Placement::There(owner));
            }
            if !claim {
                return Ok(Placement::Nowhere);
            }
            let taken: i64 = redis::cmd("EVAL")
                .arg(TAKE_OVER)
                .arg(1)
                .arg(&self.keys.rooms)
                .arg(code)
                .arg(&owner)
                .arg(&self.node_id)
                .query_async(&mut conn)
                .await?;
            if taken == 1 {
                return Ok(Placement::Here(Some(code.to_owned())));
            }
            // Another node took it first.
            let owner: Option<String> = conn.hget(&self.keys.rooms, code).await?;
            Ok(match owner {
                Some(owner) if owner == self.node_id => Placement::Here(None),
                Some(owner) => Placement::There(owner),
                None => Placement::Nowhere,
            })
        };
        tokio::time::timeout(ROOM_LOOKUP_TIMEOUT, lookup)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }

    /// Claim a fresh code for a new room, drawn by `draw`.
    pub async fn claim_new_room(&self, draw: impl Fn() -> String) -> redis::RedisResult<String> {
        let mut conn = self.commands.clone();
        let claim = async {
            for _ in 0..CLAIM_TRIES {
                let code = draw();
                let claimed: bool = conn.hset_nx(&self.keys.rooms, &code, &self.node_id).await?;
                if claimed {
                    return Ok(code);
                }
            }
            Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "no free room code",
            )))
        };
        tokio::time::timeout(ROOM_LOOKUP_TIMEOUT, claim)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }

    /// A room of this node closed (or was never created after its claim): free its code.
    pub fn release_room(&self, code: &str) {
        self.queue(super::Outgoing::Release(code.to_owned()));
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in time"))
}
