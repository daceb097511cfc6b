//! A worker context on a fresh database and embedded queue, with members signed in at the mock.

use std::{collections::HashMap, sync::Arc};

use domain::{config::Settings, jobs::JobQueue, patreon::PatreonClient};
use patreon_mock::{MockConfig, MockPatreon, MockUser};
use test_support::{Backend, TestDb};
use url::Url;
use worker::WorkerCtx;

pub const CAMPAIGN: &str = "1234560";

pub struct World {
    pub mock: MockPatreon,
    pub ctx: WorkerCtx,
    _db: TestDb,
    _queue: TestDb,
}

impl World {
    pub async fn new(backend: Backend) -> World {
        Self::with_schedule(backend, domain::schedule::DEFAULT_VERIFY_SCHEDULE).await
    }

    pub async fn with_schedule(backend: Backend, schedule: &str) -> World {
        let mock = MockPatreon::start(MockConfig {
            campaign_id: CAMPAIGN.into(),
            ..MockConfig::default()
        })
        .await
        .unwrap();
        let db_file = TestDb::create(backend).await;
        let queue_file = TestDb::create(Backend::Sqlite).await;
        let vars: HashMap<&str, String> = HashMap::from([
            ("DATABASE_URL", db_file.url.clone()),
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
        ]);
        let settings = Settings::from_lookup(|k| vars.get(k).cloned()).unwrap();
        let db = domain::db::connect(&settings.database_url, 5)
            .await
            .unwrap();
        domain::db::migrate(&db).await.unwrap();
        let ctx = WorkerCtx {
            queue: JobQueue::open(&settings, None).await.unwrap(),
            patreon: PatreonClient::new(settings.patreon.clone()).unwrap(),
            db,
            settings: Arc::new(settings),
        };
        World {
            mock,
            ctx,
            _db: db_file,
            _queue: queue_file,
        }
    }

    /// Signs `user` in at the mock and records them, as the api's callback does; returns our id.
    pub async fn signed_in(&self, user: MockUser) -> i64 {
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
        let user = domain::users::record_sign_in(
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
