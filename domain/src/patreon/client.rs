use std::time::Duration;

use reqwest::{StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::{Identity, PatreonError, budget::PatreonBudget, resources, resources::CampaignMember};
use crate::infra::config::PatreonSettings;

const USER_AGENT: &str = concat!("patreon-gate/", env!("CARGO_PKG_VERSION"));

/// The fields we read from `/identity`; Patreon returns only what is asked for.
const IDENTITY_QUERY: &[(&str, &str)] = &[
    (
        "include",
        "memberships.campaign,memberships.currently_entitled_tiers",
    ),
    (
        "fields[user]",
        "email,full_name,image_url,is_email_verified",
    ),
    (
        "fields[member]",
        "patron_status,last_charge_status,last_charge_date,next_charge_date,\
         currently_entitled_amount_cents,will_pay_amount_cents,pledge_relationship_start,\
         pledge_cadence,is_free_trial,is_gifted",
    ),
    ("fields[tier]", "title,amount_cents"),
];

/// What a single member read with the creator token asks for.
const MEMBER_QUERY: &[(&str, &str)] = &[
    ("include", "user,campaign,currently_entitled_tiers"),
    (
        "fields[member]",
        "patron_status,last_charge_status,last_charge_date,next_charge_date,\
         currently_entitled_amount_cents,will_pay_amount_cents,pledge_relationship_start,\
         pledge_cadence,is_free_trial,is_gifted",
    ),
    ("fields[tier]", "title,amount_cents"),
];

/// A fresh pair from the token endpoint. Both tokens are single use at Patreon.
/// `Debug` shows no token: `SecretString` redacts itself.
#[derive(Debug)]
pub struct TokenGrant {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    pub expires_in: Duration,
    pub scope: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<SecretString>,
    refresh_token: Option<SecretString>,
    expires_in: Option<i64>,
    scope: Option<String>,
    token_type: Option<String>,
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: Option<String>,
}

/// Client for Patreon's OAuth and API v2. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct PatreonClient {
    pub(super) http: reqwest::Client,
    pub(super) settings: std::sync::Arc<PatreonSettings>,
    pub(super) budget: std::sync::Arc<PatreonBudget>,
    /// The longest a call waits for the budget; `None`: as long as it takes.
    max_budget_wait: Option<Duration>,
}

impl PatreonClient {
    pub fn new(settings: PatreonSettings) -> Result<Self, PatreonError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(PatreonError::Network)?;
        let (client, per_token) = super::budget::quotas(&settings);
        let budget = PatreonBudget::local(client, per_token);
        Ok(Self {
            http,
            settings: std::sync::Arc::new(settings),
            budget: std::sync::Arc::new(budget),
            max_budget_wait: None,
        })
    }

    /// Calls that would wait longer than `max_wait` for the budget (Patreon paused us after a
    /// 429) fail at once as rate limited: for a process answering people, such as the api.
    pub fn waiting_at_most(mut self, max_wait: Duration) -> Self {
        self.max_budget_wait = Some(max_wait);
        self
    }

    /// Waits for the budget to allow a call (with `token`, if it carries one).
    pub(super) async fn take_budget(
        &self,
        token: Option<&SecretString>,
    ) -> Result<(), PatreonError> {
        self.budget
            .acquire_within(token, self.max_budget_wait)
            .await
            .map_err(|wait| PatreonError::RateLimited {
                retry_after: Some(wait),
            })
    }

    /// Shares `budget` (e.g. one counted in Redis for the whole deployment) for every call.
    pub fn with_budget(mut self, budget: PatreonBudget) -> Self {
        self.budget = std::sync::Arc::new(budget);
        self
    }

    pub fn settings(&self) -> &PatreonSettings {
        &self.settings
    }

    pub(super) fn endpoint(&self, path: &str) -> Url {
        let mut url = self.settings.base_url.clone();
        url.set_path(path);
        url
    }

    /// Where to send the browser; `state` is the caller's single-use nonce.
    pub fn authorize_url(&self, state: &str) -> Url {
        let mut url = match &self.settings.authorize_url {
            Some(url) => url.clone(),
            None => self.endpoint("/oauth2/authorize"),
        };
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", self.settings.redirect_uri.as_str())
            .append_pair("scope", &self.settings.scopes)
            .append_pair("state", state);
        url
    }

    /// Trades the callback's single-use `code` for a token pair.
    pub async fn exchange_code(&self, code: &str) -> Result<TokenGrant, PatreonError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &self.settings.client_id),
            ("client_secret", self.settings.client_secret.expose_secret()),
            ("redirect_uri", self.settings.redirect_uri.as_str()),
        ])
        .await
    }

    /// Uses (and so consumes) `refresh_token`; the caller must store the new pair atomically.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenGrant, PatreonError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
            ("client_id", &self.settings.client_id),
            ("client_secret", self.settings.client_secret.expose_secret()),
        ])
        .await
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenGrant, PatreonError> {
        let result = self.token_request_unobserved(form).await;
        self.settle("token", result).await
    }

    async fn token_request_unobserved(
        &self,
        form: &[(&str, &str)],
    ) -> Result<TokenGrant, PatreonError> {
        self.take_budget(None).await?;
        let response = self
            .http
            .post(self.endpoint("/api/oauth2/token"))
            .form(form)
            .send()
            .await
            .map_err(PatreonError::from_transport)?;
        let status = response.status();
        if status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED {
            let body: Option<OAuthErrorBody> = response.json().await.ok();
            let code = body.and_then(|b| b.error).unwrap_or_default();
            return Err(match code.as_str() {
                "invalid_grant" => PatreonError::InvalidGrant { code },
                // A 401 from the token endpoint with any other body still means the link is dead.
                _ if status == StatusCode::UNAUTHORIZED && code != "invalid_client" => {
                    PatreonError::InvalidGrant {
                        code: "unauthorized".into(),
                    }
                }
                _ => PatreonError::Rejected {
                    status: status.as_u16(),
                },
            });
        }
        let body: TokenResponse = check_status(response)
            .await?
            .json()
            .await
            .map_err(PatreonError::from_transport)?;
        if !body
            .token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
        {
            return Err(PatreonError::BadResponse("token_type is not Bearer".into()));
        }
        let (Some(access_token), Some(refresh_token)) = (body.access_token, body.refresh_token)
        else {
            return Err(PatreonError::BadResponse("token pair incomplete".into()));
        };
        let expires_in = body.expires_in.filter(|s| *s > 0).ok_or_else(|| {
            PatreonError::BadResponse("expires_in missing or not positive".into())
        })?;
        Ok(TokenGrant {
            access_token,
            refresh_token,
            expires_in: Duration::from_secs(expires_in.unsigned_abs()),
            scope: body.scope,
        })
    }

    /// Reads the member's identity and their membership of our campaign.
    pub async fn identity(&self, access_token: &SecretString) -> Result<Identity, PatreonError> {
        let result = self.identity_unobserved(access_token).await;
        self.settle("identity", result).await
    }

    async fn identity_unobserved(
        &self,
        access_token: &SecretString,
    ) -> Result<Identity, PatreonError> {
        let mut url = self.endpoint("/api/oauth2/v2/identity");
        url.query_pairs_mut().extend_pairs(IDENTITY_QUERY);
        self.take_budget(Some(access_token)).await?;
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(PatreonError::from_transport)?;
        let body: serde_json::Value = check_status(response)
            .await?
            .json()
            .await
            .map_err(PatreonError::from_transport)?;
        let all_memberships_visible = self
            .settings
            .scopes
            .split(' ')
            .any(|s| s == "identity.memberships");
        resources::parse_identity(&body, &self.settings.campaign_id, all_memberships_visible)
    }
}

impl PatreonClient {
    /// Whether calls that need the creator token can be made.
    pub fn has_creator_token(&self) -> bool {
        self.settings.creator_access_token.is_some()
    }

    /// Reads one member of our campaign with the creator token (`GET /members/{id}`); `None`
    /// when Patreon has no such member any more.
    pub async fn member(&self, member_id: &str) -> Result<Option<CampaignMember>, PatreonError> {
        let result = self.member_unobserved(member_id).await;
        self.settle("member", result).await
    }

    async fn member_unobserved(
        &self,
        member_id: &str,
    ) -> Result<Option<CampaignMember>, PatreonError> {
        let token = self
            .settings
            .creator_access_token
            .as_ref()
            .ok_or(PatreonError::NoCreatorToken)?;
        // Member ids are UUIDs: anything else must not reach a URL path.
        if member_id.is_empty()
            || member_id.len() > 64
            || !member_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-')
        {
            return Err(PatreonError::BadResponse("malformed member id".into()));
        }
        let mut url = self.endpoint(&format!("/api/oauth2/v2/members/{member_id}"));
        url.query_pairs_mut().extend_pairs(MEMBER_QUERY);
        self.take_budget(Some(token)).await?;
        let response = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .map_err(PatreonError::from_transport)?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: serde_json::Value = check_status(response)
            .await?
            .json()
            .await
            .map_err(PatreonError::from_transport)?;
        resources::parse_member_document(&body).map(Some)
    }
}

impl PatreonClient {
    /// Counts a call by endpoint and outcome. A 429 holds every call of the deployment for
    /// Patreon's `Retry-After`: the limit is the client's, so going on would only meet more.
    pub(super) async fn settle<T>(
        &self,
        endpoint: &'static str,
        result: Result<T, PatreonError>,
    ) -> Result<T, PatreonError> {
        if let Err(PatreonError::RateLimited { retry_after }) = &result {
            let pause = retry_after.unwrap_or(super::budget::DEFAULT_PAUSE);
            self.budget.pause(pause).await;
        }
        observe(endpoint, &result);
        result
    }
}

/// Counts a call by endpoint and outcome.
fn observe<T>(endpoint: &'static str, result: &Result<T, PatreonError>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    };
    let labels = crate::infra::metrics::PatreonLabels { endpoint, outcome };
    crate::infra::metrics::metrics()
        .patreon_requests
        .get_or_create(&labels)
        .inc();
}

/// Maps non-success statuses to typed errors; passes 2xx through.
pub(super) async fn check_status(
    response: reqwest::Response,
) -> Result<reqwest::Response, PatreonError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(match status {
        StatusCode::UNAUTHORIZED => PatreonError::Unauthorized,
        StatusCode::TOO_MANY_REQUESTS => PatreonError::RateLimited {
            retry_after: retry_after(response).await,
        },
        s if s.is_server_error() => PatreonError::Unavailable { status: s.as_u16() },
        s => PatreonError::Rejected { status: s.as_u16() },
    })
}

/// Patreon's retry hint: the `Retry-After` header, else `errors[0].retry_after_seconds`.
async fn retry_after(response: reqwest::Response) -> Option<Duration> {
    let header_secs = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(secs) = header_secs {
        return Some(Duration::from_secs(secs.min(3600)));
    }
    let body: serde_json::Value = response.json().await.ok()?;
    let secs = body.pointer("/errors/0/retry_after_seconds")?.as_u64()?;
    Some(Duration::from_secs(secs.min(3600)))
}
