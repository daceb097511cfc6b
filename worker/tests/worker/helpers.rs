//! A worker context on a fresh database and embedded queue, with members signed in at the mock.

use std::{collections::HashMap, sync::Arc};

use domain::{infra::config::Settings, work::jobs::JobQueue};
use patreon_mock::{MockConfig, MockPatreon, MockUser};
use test_support::{Backend, TestDb};
use url::Url;
use worker::WorkerCtx;

// The typed ids, for every test module (they all glob-import the helpers).
pub use domain::{JobRequestId, SweepId, UserId, WebhookEventId};

pub const CAMPAIGN: &str = "1234560";

/// A schedule whose ticks are all in 2099: workers started by a test start no sweep of their own.
pub const NO_TICKS: &str = "0 0 0 1 1 * 2099";

pub struct World {
    pub mock: MockPatreon,
    pub ctx: WorkerCtx,
    /// The configuration, as environment variables for worker processes.
    pub env: HashMap<&'static str, String>,
    /// `None` when the test brought its own database.
    _db: Option<TestDb>,
    _queue: TestDb,
}

/// What a test changes from the defaults.
pub struct Options {
    pub backend: Backend,
    pub schedule: &'static str,
    /// Use this Redis (with a fresh key prefix) instead of the embedded queue.
    pub redis_url: Option<String>,
    pub lost_after_secs: u32,
    /// `ADMIN_PATREON_IDS`.
    pub admin_patreon_ids: &'static str,
    /// Use this (empty) database instead of a fresh one on `backend`.
    pub database_url: Option<String>,
    /// Leave `QUEUE_SQLITE_URL` unset: the embedded queue goes where it goes by default.
    pub default_queue: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: Backend::Sqlite,
            schedule: domain::work::schedule::DEFAULT_VERIFY_SCHEDULE,
            redis_url: None,
            lost_after_secs: 600,
            admin_patreon_ids: "",
            database_url: None,
            default_queue: false,
        }
    }
}

impl World {
    pub async fn new(backend: Backend) -> World {
        Self::with(Options {
            backend,
            ..Options::default()
        })
        .await
    }

    pub async fn with_schedule(backend: Backend, schedule: &'static str) -> World {
        Self::with(Options {
            backend,
            schedule,
            ..Options::default()
        })
        .await
    }

    pub async fn with(options: Options) -> World {
        let Options {
            backend,
            schedule,
            redis_url,
            lost_after_secs,
            admin_patreon_ids,
            database_url,
            default_queue,
        } = options;
        let mock = MockPatreon::start(MockConfig {
            campaign_id: CAMPAIGN.into(),
            ..MockConfig::default()
        })
        .await
        .unwrap();
        let (database_url, db_file) = match database_url {
            Some(url) => (url, None),
            None => {
                let db = TestDb::create(backend).await;
                (db.url.clone(), Some(db))
            }
        };
        let queue_file = TestDb::create(Backend::Sqlite).await;
        let mut vars: HashMap<&'static str, String> = HashMap::from([
            ("DATABASE_URL", database_url),
            ("QUEUE_SQLITE_URL", queue_file.url.clone()),
            (
                "JWT_SECRET",
                "worker-test-secret-long-enough-0123456789".into(),
            ),
            (
                "TOKEN_ENCRYPTION_KEY",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into(),
            ),
            ("PATREON_CLIENT_ID", "mock-client-id".into()),
            ("PATREON_CLIENT_SECRET", "mock-client-secret".into()),
            (
                "PATREON_REDIRECT_URI",
                "https://gate.example.com/callback".into(),
            ),
            ("PATREON_CAMPAIGN_ID", CAMPAIGN.into()),
            ("PATREON_BASE_URL", mock.base_url()),
            ("PATREON_TIMEOUT_SECS", "2".into()),
            ("FRONTEND_URL", "https://app.example.com".into()),
            ("VERIFY_SCHEDULE", schedule.into()),
            ("JOB_LOST_AFTER_SECS", lost_after_secs.to_string()),
            ("ADMIN_PATREON_IDS", admin_patreon_ids.into()),
        ]);
        if default_queue {
            vars.remove("QUEUE_SQLITE_URL");
        }
        if let Some(url) = redis_url {
            vars.insert("REDIS_URL", url);
            let prefix = format!("gate-test-{}", &domain::infra::secrets::random_id()[..12]);
            vars.insert("REDIS_KEY_PREFIX", prefix);
        }
        let settings = Settings::from_lookup(|k| vars.get(k).cloned()).unwrap();
        let redis = domain::infra::redis::connect_if_configured(settings.redis_url.as_ref())
            .await
            .unwrap();
        let db = domain::infra::db::connect(&settings.database_url, 5)
            .await
            .unwrap();
        domain::infra::db::migrate(&db).await.unwrap();
        let ctx = WorkerCtx {
            queue: JobQueue::open(&settings, redis.as_ref()).await.unwrap(),
            patreon: domain::patreon::client_for(
                &settings.patreon,
                redis.as_ref(),
                &settings.redis_key_prefix,
                Some(&db),
            )
            .unwrap(),
            db,
            settings: Arc::new(settings),
        };
        World {
            mock,
            ctx,
            env: vars,
            _db: db_file,
            _queue: queue_file,
        }
    }

    /// Signs `user` in at the mock and records them, as the api's callback does; returns our id.
    pub async fn signed_in(&self, user: MockUser) -> UserId {
        let id = user.id.clone();
        self.mock.upsert_user(user);
        let patreon = &self.ctx.patreon;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = http
            .get(format!("{}&as={id}", patreon.authorize_url("s")))
            .send()
            .await
            .unwrap();
        let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let grant = patreon.exchange_code(&code).await.unwrap();
        let identity = patreon.identity(&grant.access_token).await.unwrap();
        let s = &self.ctx.settings;
        let user = domain::members::users::record_sign_in(
            &self.ctx.db,
            &s.token_cipher,
            &s.membership,
            &identity,
            &grant,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        user.id
    }
}

impl World {
    /// A member's own recheck of `user_id`, recorded but not pushed.
    pub async fn member_recheck(&self, user_id: UserId) -> entity::job_request::Model {
        let requested = domain::work::ledger::requests::request(
            &self.ctx.db,
            user_id,
            Some(user_id),
            domain::members::membership_checks::CheckTrigger::Member,
            chrono::Duration::zero(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        let domain::work::ledger::Requested::New(request) = requested else {
            panic!("a new request")
        };
        request
    }

    /// Request `id` once it has finished (within 15 s).
    pub async fn finished_request(&self, id: &JobRequestId) -> entity::job_request::Model {
        let read = || async {
            let found = domain::work::ledger::requests::find(&self.ctx.db, id)
                .await
                .unwrap();
            found.expect("the request exists")
        };
        let within = std::time::Duration::from_secs(15);
        test_support::eventually_matching("the request to finish", within, read, |r| {
            r.finished_at.is_some()
        })
        .await
    }
}
