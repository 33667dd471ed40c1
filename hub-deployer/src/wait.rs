//! The one way the CLI waits: look at something every `every` until it says done, or until
//! `limit` has passed since the first look. Each wait (services converging, tasks gone, a job's
//! tasks ended, a network gone, the hub answering) is a look plus what to say on timeout.

use std::future::Future;
use std::time::{Duration, Instant};

/// What one look found.
#[derive(Debug)]
pub enum Look<T, S> {
    /// Done, with the result.
    Done(T),
    /// Not yet; `S` is what was seen (for the timeout's message).
    NotYet(S),
}

/// The wait ran out of time; `last` is what the last look saw.
#[derive(Debug, thiserror::Error)]
#[error("not done within {} s", .after.as_secs())]
pub struct TimedOut<S> {
    /// How long it waited.
    pub after: Duration,
    /// What the last look saw.
    pub last: S,
}

/// Look (at once, then every `every`) until `look` says [`Look::Done`], fails (its error is
/// returned at once), or `limit` has passed after a look that said [`Look::NotYet`].
pub async fn until<T, S, E, F, Fut>(
    limit: Duration,
    every: Duration,
    mut look: F,
) -> Result<Result<T, TimedOut<S>>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Look<T, S>, E>>,
{
    let start = Instant::now();
    loop {
        match look().await? {
            Look::Done(v) => return Ok(Ok(v)),
            Look::NotYet(last) if start.elapsed() >= limit => {
                return Ok(Err(TimedOut {
                    after: start.elapsed(),
                    last,
                }));
            }
            Look::NotYet(_) => tokio::time::sleep(every).await,
        }
    }
}

/// [`until`] for a look that cannot fail.
pub async fn until_done<T, S, F, Fut>(
    limit: Duration,
    every: Duration,
    mut look: F,
) -> Result<T, TimedOut<S>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Look<T, S>>,
{
    let waited = until(limit, every, || {
        let seen = look();
        async move { Ok::<_, std::convert::Infallible>(seen.await) }
    })
    .await;
    match waited {
        Ok(done) => done,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    #[tokio::test]
    async fn returns_what_the_look_found_once_done() {
        let mut n = 0;
        let r = until(Duration::from_secs(5), Duration::from_millis(1), || {
            n += 1;
            let seen = n;
            async move {
                Ok::<_, Infallible>(if seen >= 3 {
                    Look::Done(seen)
                } else {
                    Look::NotYet(seen)
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(r.unwrap(), 3);
    }

    #[tokio::test]
    async fn times_out_with_the_last_look() {
        let r = until(
            Duration::from_millis(20),
            Duration::from_millis(5),
            || async { Ok::<Look<(), &str>, Infallible>(Look::NotYet("still")) },
        )
        .await
        .unwrap();
        let t = r.unwrap_err();
        assert_eq!(t.last, "still");
        assert!(t.after >= Duration::from_millis(20));
    }

    #[tokio::test]
    async fn an_error_ends_the_wait_at_once() {
        let r: Result<Result<(), TimedOut<()>>, &str> =
            until(Duration::from_secs(5), Duration::from_millis(1), || async {
                Err("broken")
            })
            .await;
        assert_eq!(r.unwrap_err(), "broken");
    }
}
