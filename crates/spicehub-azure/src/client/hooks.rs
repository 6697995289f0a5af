//! Service-hook subscriptions (`_apis/hooks/subscriptions`): the endpoints that
//! register and remove the `git.push` webhook. They live at organization level, not
//! under a repository, and are the only endpoints that write.

use reqwest::Method;

use super::urls::Query;
use super::AzureClient;
use crate::diagnosis::{AzureError, ResourceScope};
use crate::models::{ListResponse, Subscription, SubscriptionCreate};

impl AzureClient {
    /// Subscriptions, optionally filtered (`publisherId`, `eventType`, `consumerId`, `consumerActionId`).
    pub async fn list_subscriptions(
        &self,
        publisher_id: Option<&str>,
        event_type: Option<&str>,
    ) -> Result<Vec<Subscription>, AzureError> {
        let q = Query::new()
            .push_opt("publisherId", publisher_id)
            .push_opt("eventType", event_type);
        let url = self.url(&["_apis", "hooks", "subscriptions"], q)?;
        let (page, _): (ListResponse<Subscription>, _) =
            self.get_json(url, ResourceScope::Organization).await?;
        Ok(page.value)
    }

    /// One subscription.
    pub async fn get_subscription(&self, id: &str) -> Result<Subscription, AzureError> {
        let url = self.url(&["_apis", "hooks", "subscriptions", id], Query::new())?;
        Ok(self.get_json(url, ResourceScope::Other).await?.0)
    }

    /// Creates a subscription (needs "Edit subscriptions" on the project).
    pub async fn create_subscription(
        &self,
        body: &SubscriptionCreate,
    ) -> Result<Subscription, AzureError> {
        let url = self.url(&["_apis", "hooks", "subscriptions"], Query::new())?;
        let value =
            serde_json::to_value(body).map_err(|e| AzureError::InvalidArgument(e.to_string()))?;
        self.send_json(Method::POST, url, &value, ResourceScope::Organization)
            .await
    }

    /// Replaces a subscription (`PUT`): new inputs, e.g. a new Basic Auth
    /// password, and its status (`enabled` re-enables one a user disabled).
    /// Refused for a subscription disabled by the system: delete and
    /// re-create that one.
    pub async fn replace_subscription(
        &self,
        id: &str,
        body: &SubscriptionCreate,
        status: &str,
    ) -> Result<Subscription, AzureError> {
        let url = self.url(&["_apis", "hooks", "subscriptions", id], Query::new())?;
        let mut value =
            serde_json::to_value(body).map_err(|e| AzureError::InvalidArgument(e.to_string()))?;
        if let Some(object) = value.as_object_mut() {
            object.insert("id".into(), serde_json::Value::String(id.to_owned()));
            object.insert(
                "status".into(),
                serde_json::Value::String(status.to_owned()),
            );
        }
        self.send_json(Method::PUT, url, &value, ResourceScope::Other)
            .await
    }

    /// Deletes a subscription.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), AzureError> {
        let url = self.url(&["_apis", "hooks", "subscriptions", id], Query::new())?;
        self.delete(url, ResourceScope::Other).await
    }
}
