//! Lua scripts for every change that touches more than one key or must not be done
//! twice. Each script names all its keys in `KEYS` (they share the queue's hash tag, so
//! this works on Redis Cluster too).
//!
//! The settle scripts (`ACK`, `RETRY`, `DEAD_LETTER`) start with `XACK` and stop when it
//! acknowledged nothing: the entry was already settled by someone else (typically a
//! consumer that reclaimed it from us), and settling it again would duplicate the job.

use std::sync::LazyLock;

use redis::Script;

/// Finish a job: acknowledge and delete the entry.
///
/// KEYS: stream. ARGV: group, entry id. Returns 1 if this call settled the entry.
pub(crate) static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Retry a job later: acknowledge and delete the entry, and put the next attempt into
/// the delayed set.
///
/// KEYS: stream, delayed. ARGV: group, entry id, due ms, delayed-set member.
/// Returns 1 if this call settled the entry.
pub(crate) static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
",
    )
});

/// Give up on a job: acknowledge and delete the entry, and append it to the
/// dead-letter stream.
///
/// KEYS: stream, dead. ARGV: group, entry id, then the field/value pairs of the
/// dead-letter entry. Returns 1 if this call settled the entry.
pub(crate) static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
return 1
",
    )
});

/// Move due members of the delayed set to the stream. Reading, adding and removing
/// happen in one script, so with many promoters running a job is promoted once.
///
/// KEYS: delayed, stream. ARGV: now ms, maximum members to move.
/// Returns `{moved, due ms of the earliest remaining member or -1}`.
///
/// Members are `<job_id>\n<kind>\n<envelope>`; a member without that header is moved
/// whole, and the consumer dead-letters it as undecodable.
pub(crate) static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local first = string.find(member, '\n', 1, true)
  local second = first and string.find(member, '\n', first + 1, true)
  if second then
    redis.call('XADD', KEYS[2], '*',
      'job_id', string.sub(member, 1, first - 1),
      'kind', string.sub(member, first + 1, second - 1),
      'envelope', string.sub(member, second + 1))
  else
    redis.call('XADD', KEYS[2], '*', 'envelope', member)
  end
  redis.call('ZREM', KEYS[1], member)
end
local next_due = -1
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if head[2] then next_due = tonumber(head[2]) end
return {#due, next_due}
",
    )
});
