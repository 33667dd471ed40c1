//! `swarmhub volume list|delete`: nfsd's volumes, and the only place the CLI deletes user data;
//! also the creation of volumes ahead of their first mount (`volume prepare`).
//!
//! nfsd's control API needs its bearer token, which lives only in the Docker secret
//! `swarmhub-nfsd-token` (secrets cannot be read back through the Docker API). So the manager
//! side runs a one-shot job with the swarmhub image and that secret ([`api_job`]); the job
//! ([`node_api`]) calls nfsd at the storage node's address and prints its result lines (one,
//! or one per volume of a [`ApiAction::Create`]) that the manager reads from the task's log.
//!
//! Deleting asks for the volume's name to be typed (or `--confirm NAME`); nfsd then moves the
//! tree aside, and only `--purge` deletes it.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use bollard::models::{
    ServiceSpec, ServiceSpecMode, TaskSpec, TaskSpecContainerSpec, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use serde::{Deserialize, Serialize};
use swarmhub_control_api::client::{ClientError, ControlClient};
use swarmhub_control_api::mount_path::public_export;
use swarmhub_control_api::{CreateVolume, Removed, ShareDir, ShareDirInfo, Volume, VolumeOptions};

use crate::apply::jobs;
use crate::docker::cluster::Swarm;
use crate::exit::CliError;
use crate::names;
use crate::names::API_JOB;
use crate::plan;
use crate::progress::Progress;
use crate::settings::Config;
use crate::wait::{self, Look};

/// How long the job keeps trying to reach an nfsd that does not accept connections yet.
const NFSD_START_GRACE: Duration = Duration::from_secs(30);
/// Prefix of the job's result line.
pub const RESULT_PREFIX: &str = "swarmhub-api-result: ";
/// How many volumes the job asks nfsd for at once.
const CREATE_CONCURRENCY: usize = 8;

/// A volume to create: its name and its options as Docker hands them to the plugin (`-o k=v`,
/// the hub's `DriverConfig` options), which the plugin turns into nfsd's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// the volume
    pub name: String,
    /// its options, e.g. `user=alice`, `layout=home`, `size=10737418240`
    pub options: BTreeMap<String, String>,
}

impl VolumeSpec {
    /// The job's argument: `NAME:k=v,k=v` (names, user and share names and sizes hold no `:`,
    /// `,` or `=`).
    pub fn to_arg(&self) -> String {
        let opts: Vec<String> = self
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{}:{}", self.name, opts.join(","))
    }

    /// The inverse of [`VolumeSpec::to_arg`].
    pub fn from_arg(arg: &str) -> Result<VolumeSpec, String> {
        let (name, opts) = arg
            .split_once(':')
            .ok_or_else(|| format!("{arg:?} is not NAME:KEY=VALUE,..."))?;
        let mut options = BTreeMap::new();
        for kv in opts.split(',').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("option {kv:?} of {name:?} is not KEY=VALUE"))?;
            options.insert(k.to_string(), v.to_string());
        }
        Ok(VolumeSpec {
            name: name.to_string(),
            options,
        })
    }

    /// nfsd's request for this volume, exactly as the plugin makes it from Docker's options.
    pub fn request(&self) -> Result<CreateVolume, String> {
        let options = VolumeOptions::from_map(&self.options).map_err(|e| e.to_string())?;
        Ok(CreateVolume {
            name: self.name.clone(),
            options,
            identity: None,
            client: None,
        })
    }
}

/// What the job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ApiAction {
    /// List the volumes.
    List,
    /// Remove a volume (tree moved aside), and with `purge` delete the tree.
    Delete {
        /// the volume
        name: String,
        /// delete the moved tree too
        purge: bool,
    },
    /// Make (or keep) a top-level directory of a share owned by `user` with `mode`.
    ShareDir {
        /// the share
        share: String,
        /// the directory
        name: String,
        /// its owner (LDAP user name)
        user: String,
        /// its mode
        mode: u32,
    },
    /// Create each volume, or confirm the one there (same options); one result line each.
    Create {
        /// the volumes
        volumes: Vec<VolumeSpec>,
    },
}

/// What the job found or did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ApiResult {
    /// The volumes.
    Volumes {
        /// nfsd's list
        volumes: Vec<Volume>,
    },
    /// A volume was removed.
    Deleted {
        /// nfsd's answer
        removed: Removed,
        /// the moved tree was deleted
        purged: bool,
    },
    /// A share's top-level directory is there.
    ShareDir {
        /// nfsd's answer
        dir: ShareDirInfo,
    },
    /// A volume of a `Create` is there: made now, or it was there with the same options.
    Ensured {
        /// the volume
        name: String,
        /// nfsd made it now
        created: bool,
    },
    /// nfsd refused a volume of a `Create` (e.g. 409: it exists with other options).
    NotEnsured {
        /// the volume
        name: String,
        /// nfsd's reason
        error: String,
    },
    /// nfsd refused or could not be reached.
    Failed {
        /// why
        error: String,
    },
}

/// Calls `f` until nfsd accepts connections (`run` and `volume prepare` may ask right after
/// nfsd's task started: its listener gets a moment), at most [`NFSD_START_GRACE`].
async fn patiently<T, F, Fut>(f: F) -> Result<T, ClientError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    wait::until_done(NFSD_START_GRACE, Duration::from_millis(500), || async {
        match f().await {
            Err(e @ ClientError::Unreachable { .. }) => Look::NotYet(e),
            r => Look::Done(r),
        }
    })
    .await
    .unwrap_or_else(|timed_out| Err(timed_out.last))
}

/// The job side: call nfsd at `base` with the token in `token_file`; one result, or one per
/// volume of a `Create`.
pub async fn node_api(base: &str, token_file: &Path, action: &ApiAction) -> Vec<ApiResult> {
    let token = match std::fs::read_to_string(token_file) {
        Ok(t) => t.trim().to_string(),
        Err(e) => {
            return vec![ApiResult::Failed {
                error: format!(
                    "cannot read nfsd's token from {}: {e}",
                    token_file.display()
                ),
            }];
        }
    };
    let client = ControlClient::new(base, token, Duration::from_secs(30));
    let r = match action {
        ApiAction::Create { volumes } => return create_each(&client, volumes).await,
        // mount paths carry each volume's capability secret: never into a log
        ApiAction::List => client.list().await.map(|volumes| ApiResult::Volumes {
            volumes: volumes
                .into_iter()
                .map(|mut v| {
                    v.export = public_export(&v.export);
                    v
                })
                .collect(),
        }),
        ApiAction::ShareDir {
            share,
            name,
            user,
            mode,
        } => {
            let req = ShareDir {
                user: Some(user.clone()),
                identity: None,
                mode: *mode,
            };
            patiently(|| client.ensure_share_dir(share, name, &req))
                .await
                .map(|dir| ApiResult::ShareDir { dir })
        }
        ApiAction::Delete { name, purge } => match client.remove(name).await {
            Ok(removed) => {
                let entry = removed
                    .tree_moved_to
                    .as_deref()
                    .map(|t| t.trim_start_matches("removed/").to_string());
                match (purge, entry) {
                    (true, Some(entry)) => client.purge(&entry).await.map(|_| ApiResult::Deleted {
                        removed,
                        purged: true,
                    }),
                    _ => Ok(ApiResult::Deleted {
                        removed,
                        purged: false,
                    }),
                }
            }
            Err(e) => Err(e),
        },
    };
    vec![r.unwrap_or_else(|e| ApiResult::Failed {
        error: e.to_string(),
    })]
}

/// Each volume through nfsd's create-or-ensure, a few at a time, in the given order; an nfsd
/// that does not answer at all is one `Failed` result.
async fn create_each(client: &ControlClient, volumes: &[VolumeSpec]) -> Vec<ApiResult> {
    use futures_util::StreamExt;
    if let Err(e) = patiently(|| client.health()).await {
        return vec![ApiResult::Failed {
            error: e.to_string(),
        }];
    }
    futures_util::stream::iter(volumes)
        .map(|v| async move {
            let outcome = match v.request() {
                Ok(req) => client.ensure(&req).await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match outcome {
                Ok((_, created)) => ApiResult::Ensured {
                    name: v.name.clone(),
                    created,
                },
                Err(error) => ApiResult::NotEnsured {
                    name: v.name.clone(),
                    error,
                },
            }
        })
        .buffered(CREATE_CONCURRENCY)
        .collect()
        .await
}

/// The job's result line.
pub fn result_line(r: &ApiResult) -> String {
    format!(
        "{RESULT_PREFIX}{}",
        serde_json::to_string(r).unwrap_or_default()
    )
}

/// The one-shot job that runs `action` against nfsd at `server:api_port`.
pub fn api_job(cfg: &Config, server: &str, action: &ApiAction) -> ServiceSpec {
    let mut args = vec![
        "volume".to_string(),
        "api".into(),
        "--server".into(),
        format!("http://{server}:{}", cfg.cluster.nfsd_api_port),
        "--token-file".into(),
        crate::settings::secret_path(names::NFSD_TOKEN_SECRET),
    ];
    match action {
        ApiAction::List => args.push("list".into()),
        ApiAction::Delete { name, purge } => {
            args.extend(["delete".into(), name.clone()]);
            if *purge {
                args.push("--purge".into());
            }
        }
        ApiAction::ShareDir {
            share,
            name,
            user,
            mode,
        } => args.extend([
            "share-dir".into(),
            share.clone(),
            name.clone(),
            "--user".into(),
            user.clone(),
            "--mode".into(),
            format!("{mode:o}"),
        ]),
        ApiAction::Create { volumes } => {
            args.push("create".into());
            args.extend(volumes.iter().map(VolumeSpec::to_arg));
        }
    }
    let secret = plan::plugin_rollout_service(cfg, server)
        .task_template
        .and_then(|t| t.container_spec)
        .and_then(|c| c.secrets)
        .unwrap_or_default();
    ServiceSpec {
        name: Some(API_JOB.into()),
        labels: Some(plan::labels("volume-api")),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(cfg.images.cli.clone()),
                labels: Some(plan::labels("volume-api")),
                args: Some(args),
                secrets: Some(secret),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            // the node's own network, like the plugin: nfsd listens in the storage node's network
            // at its address, and swarmhub's firewall chain rejects containers on bridges
            networks: Some(vec![plan::host_network()]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated_job: Some(bollard::models::ServiceSpecModeReplicatedJob {
                max_concurrent: Some(1),
                total_completions: Some(1),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Run `action` through the job and return its result.
pub async fn call(
    c: &Swarm,
    cfg: &Config,
    action: &ApiAction,
    progress: &Progress,
) -> Result<ApiResult, CliError> {
    let mut results = call_each(c, cfg, action, progress).await?;
    Ok(results
        .pop()
        .expect("call_each returns at least one result"))
}

/// Run `action` through the job and return every result line it printed (at least one; an
/// nfsd that refused or could not be reached at all is an error).
pub async fn call_each(
    c: &Swarm,
    cfg: &Config,
    action: &ApiAction,
    progress: &Progress,
) -> Result<Vec<ApiResult>, CliError> {
    let storage = c.storage_node(&cfg.cluster.storage_node_label).await?;
    let run = jobs::run_once(
        c,
        &api_job(cfg, &storage.addr, action),
        RESULT_PREFIX,
        cfg.timeouts.service_seconds,
        "asking nfsd through a one-shot job",
        progress,
    )
    .await?;
    let results = results_in(&run.log);
    if let Some(error) = results.iter().find_map(|r| match r {
        ApiResult::Failed { error } => Some(error),
        _ => None,
    }) {
        return Err(anyhow::anyhow!("nfsd: {error}").into());
    }
    if results.is_empty() {
        // clap's words when the image's swarmhub predates the action (e.g. `create`)
        let fix = if run.log.contains("unrecognized subcommand") {
            format!(
                "the swarmhub image {} is older than this swarmhub CLI: push this version's images (swarmhub push, or swarmhub rebuild), or use the CLI of the deployed version",
                cfg.images.cli
            )
        } else {
            crate::docker::cluster::fix_for_task_error(
                run.task.error.as_deref().unwrap_or(&run.log),
            )
        };
        return Err(CliError::Precondition {
            what: format!("the job {API_JOB} gave no result: task {}", run.failure()),
            fix,
        });
    }
    Ok(results)
}

/// Every result line in a job's log, in order (pure).
pub fn results_in(log: &str) -> Vec<ApiResult> {
    log.lines()
        .filter_map(|l| l.split_once(RESULT_PREFIX))
        .filter_map(|(_, json)| serde_json::from_str(json.trim()).ok())
        .collect()
}

/// Ask for the volume's name unless `confirm` already equals it. Refuses on a mismatch or
/// when there is nobody to ask.
pub fn confirm_delete(
    name: &str,
    purge: bool,
    confirm: Option<&str>,
    interactive: bool,
    input: &mut dyn BufRead,
    prompt: &mut dyn Write,
) -> Result<(), CliError> {
    let what = if purge {
        "delete it for good (the tree is purged; this cannot be undone)"
    } else {
        "remove it (nfsd moves its tree aside to removed/; `--purge` would delete it)"
    };
    match confirm {
        Some(c) if c == name => return Ok(()),
        Some(c) => {
            return Err(CliError::Usage(format!(
                "--confirm {c:?} does not match the volume {name:?}; nothing was deleted"
            )));
        }
        None if !interactive => {
            return Err(CliError::Usage(format!(
                "deleting volume {name:?} needs confirmation: pass --confirm {name} (nothing was deleted)"
            )));
        }
        None => {}
    }
    write!(
        prompt,
        "This will {what}.\nType the volume's name ({name}) to go on: "
    )
    .and_then(|()| prompt.flush())
    .context("cannot ask for confirmation")?;
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("cannot read the confirmation")?;
    if line.trim() == name {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "you typed {:?}, not {name:?}; nothing was deleted",
            line.trim()
        )))
    }
}

/// The labels of the job, for tests.
pub fn job_labels() -> HashMap<String, String> {
    plan::labels("volume-api")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_needs_the_name_typed_or_confirmed() {
        let mut out = Vec::new();
        confirm_delete(
            "home-alice",
            false,
            Some("home-alice"),
            false,
            &mut "".as_bytes(),
            &mut out,
        )
        .unwrap();
        let e = confirm_delete(
            "home-alice",
            false,
            Some("home-bob"),
            true,
            &mut "".as_bytes(),
            &mut out,
        )
        .unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(e.to_string().contains("nothing was deleted"), "{e}");
        let e = confirm_delete(
            "home-alice",
            true,
            None,
            false,
            &mut "".as_bytes(),
            &mut out,
        )
        .unwrap_err();
        assert!(e.to_string().contains("--confirm home-alice"), "{e}");
        confirm_delete(
            "home-alice",
            true,
            None,
            true,
            &mut "home-alice\n".as_bytes(),
            &mut out,
        )
        .unwrap();
        let shown = String::from_utf8(out.clone()).unwrap();
        assert!(shown.contains("cannot be undone"), "{shown}");
        let e = confirm_delete(
            "home-alice",
            true,
            None,
            true,
            &mut "yes\n".as_bytes(),
            &mut out,
        )
        .unwrap_err();
        assert!(e.to_string().contains("nothing was deleted"), "{e}");
    }

    #[test]
    fn the_job_holds_the_token_and_calls_the_storage_node() {
        let cfg = Config::default();
        let s = api_job(
            &cfg,
            "10.0.0.5",
            &ApiAction::Delete {
                name: "home-alice".into(),
                purge: true,
            },
        );
        let nets = s.task_template.as_ref().unwrap().networks.clone().unwrap();
        assert_eq!(nets[0].target.as_deref(), Some("host"));
        let c = s.task_template.unwrap().container_spec.unwrap();
        assert_eq!(
            c.args.unwrap().join(" "),
            "volume api --server http://10.0.0.5:8049 --token-file /run/secrets/swarmhub-nfsd-token delete home-alice --purge"
        );
        assert_eq!(
            c.secrets.unwrap()[0].secret_name.as_deref(),
            Some(names::NFSD_TOKEN_SECRET)
        );
        assert!(s.mode.unwrap().replicated_job.is_some());
        assert_eq!(job_labels()["swarmhub.managed"], "true");
    }

    #[test]
    fn results_round_trip() {
        let r = ApiResult::Failed {
            error: "401".into(),
        };
        let line = result_line(&r);
        let back: ApiResult =
            serde_json::from_str(line.strip_prefix(RESULT_PREFIX).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn the_course_directory_job_names_share_dir_owner_and_mode() {
        let args = job_args(&ApiAction::ShareDir {
            share: "exchange".into(),
            name: "course".into(),
            user: "tina".into(),
            mode: 0o755,
        });
        assert!(
            args.ends_with(" share-dir exchange course --user tina --mode 755"),
            "{args}"
        );
    }

    /// The job's command line for `action`.
    fn job_args(action: &ApiAction) -> String {
        api_job(&Config::default(), "10.0.0.5", action)
            .task_template
            .unwrap()
            .container_spec
            .unwrap()
            .args
            .unwrap()
            .join(" ")
    }

    /// A real nfsd in a temporary directory, its token file and its API's base URL.
    async fn in_process_nfsd() -> (
        tempfile::TempDir,
        swarmhub_nfsd::server::Running,
        std::path::PathBuf,
        String,
    ) {
        let data = tempfile::tempdir().unwrap();
        let nfsd =
            swarmhub_nfsd::server::start(swarmhub_nfsd::config::Settings::ephemeral(data.path()))
                .await
                .unwrap();
        let token = data.path().join("token");
        std::fs::write(&token, &nfsd.token).unwrap();
        let base = format!("http://{}", nfsd.api_addr);
        (data, nfsd, token, base)
    }

    /// The job side against a real in-process nfsd: the course directory is made once and
    /// kept on a re-run; a list never carries mount secrets (it lands in a task log).
    #[tokio::test(flavor = "multi_thread")]
    async fn the_job_side_makes_share_dirs_and_lists_without_secrets() {
        let (data, nfsd, token, base) = in_process_nfsd().await;
        nfsd.volumes
            .create(swarmhub_control_api::CreateVolume {
                name: "home-tina".into(),
                options: Default::default(),
                identity: Some(swarmhub_control_api::ExplicitIdentity {
                    uid: 4201,
                    gid: 4200,
                    groups: vec![],
                }),
                client: None,
            })
            .await
            .unwrap();
        let secret = nfsd.volumes.get("home-tina").unwrap().export;
        match node_api(&base, &token, &ApiAction::List).await.remove(0) {
            ApiResult::Volumes { volumes } => {
                assert_eq!(volumes[0].export, "/home-tina");
                assert!(!result_line(&ApiResult::Volumes { volumes }).contains(&secret));
            }
            other => panic!("{other:?}"),
        }
        // no LDAP here: the owner cannot be looked up, and the error says so
        let action = ApiAction::ShareDir {
            share: "exchange".into(),
            name: "course".into(),
            user: "tina".into(),
            mode: 0o755,
        };
        match node_api(&base, &token, &action).await.remove(0) {
            ApiResult::Failed { error } => assert!(error.contains("LDAP"), "{error}"),
            other => panic!("{other:?}"),
        }
        assert!(!data.path().join("shares/exchange/course").exists());
        nfsd.stop().await.unwrap();
    }

    /// A `Create` answers one line per volume, in order, each with nfsd's own reason when it
    /// refuses; the job's arguments carry every volume with its options.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_job_side_creates_each_volume_and_reports_each() {
        let (_data, nfsd, token, base) = in_process_nfsd().await;
        let opts = |pairs: &[(&str, &str)]| VolumeSpec {
            name: String::new(),
            options: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let volumes = vec![
            VolumeSpec {
                name: "home-tina".into(),
                ..opts(&[("user", "tina"), ("layout", "home")])
            },
            VolumeSpec {
                name: "home-x".into(),
                ..opts(&[("user", "x"), ("colour", "red")])
            },
        ];
        let action = ApiAction::Create { volumes };
        let args = job_args(&action);
        assert!(
            args.ends_with(" create home-tina:layout=home,user=tina home-x:colour=red,user=x"),
            "{args}"
        );
        let results = node_api(&base, &token, &action).await;
        let log: String = results.iter().map(|r| result_line(r) + "\n").collect();
        assert_eq!(results_in(&log), results);
        match &results[..] {
            // no LDAP here: nfsd cannot look tina up, and says so
            [
                ApiResult::NotEnsured { name: a, error: ea },
                ApiResult::NotEnsured { name: b, error: eb },
            ] => {
                assert_eq!((a.as_str(), b.as_str()), ("home-tina", "home-x"));
                assert!(ea.contains("LDAP"), "{ea}");
                assert!(eb.contains("colour"), "{eb}");
            }
            other => panic!("{other:?}"),
        }
        nfsd.stop().await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_token_file_is_a_failed_result() {
        let r = node_api(
            "http://127.0.0.1:9",
            Path::new("/nonexistent/token"),
            &ApiAction::List,
        )
        .await;
        match r.into_iter().next().unwrap() {
            ApiResult::Failed { error } => assert!(error.contains("/nonexistent/token"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
}
