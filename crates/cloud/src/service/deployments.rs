//! Deployment operations and re-evaluation: a deployment created, changed or deleted
//! re-evaluates every device; a device's tags or reported properties re-evaluate that device.
//! Each device's effective configuration is written into its `$edgeAgent`, `$edgeHub` and
//! module twins' desired properties, each write an atomic batch with the device's assignment.

use std::collections::BTreeMap;

use super::{Cloud, check_etag, now_ms};
use crate::deployments::assign::{self, Compiled};
use crate::deployments::metrics::{Metrics, agent_report};
use crate::deployments::{self, DeploymentRecord};
use crate::error::CloudError;
use crate::registry::DeviceRecord;
use crate::store::{TwinKey, Write};

/// Devices re-evaluated per store batch.
const BATCH: usize = 200;

/// A new deployment as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewDeployment {
    /// Its id.
    pub id: String,
    /// `modulesContent`, or a manifest holding it, as JSON text.
    pub content: String,
    /// The target condition.
    pub target_condition: String,
    /// Larger wins.
    pub priority: u32,
    /// Layered.
    pub layered: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// Changes to a deployment's targeting.
#[derive(Debug, Clone, Default)]
pub struct DeploymentUpdate {
    /// A new target condition.
    pub target_condition: Option<String>,
    /// A new priority.
    pub priority: Option<u32>,
    /// New labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Apply only if the etag is this.
    pub if_match: Option<String>,
}

impl Cloud {
    fn compiled(&self) -> Result<Vec<Compiled>, CloudError> {
        let mut out = Vec::new();
        for record in self.store.deployments()? {
            // Conditions were checked at creation; a stored one that no longer parses (a
            // newer grammar's) targets nothing rather than stopping every evaluation.
            match deployments::condition(&record.target_condition) {
                Ok(condition) => out.push(Compiled { record, condition }),
                Err(e) => tracing::error!(deployment = %record.id, error = %e, "stored target condition unusable"),
            }
        }
        Ok(out)
    }

    /// The writes that bring `device` in line with `compiled`; updates `device` in place.
    fn reevaluate(&self, device: &mut DeviceRecord, compiled: &[Compiled]) -> Result<Vec<Write>, CloudError> {
        let twin = self.store.twin(&TwinKey::device(&device.id))?.unwrap_or_default();
        let plan = assign::plan(compiled, &twin.query_document(&device.id, None, device.status_name()));
        let mut writes = Vec::new();
        for (module, desired) in plan.twins.into_iter().flatten() {
            let key = TwinKey::module(&device.id, &module);
            let mut module_twin = self.store.twin(&key)?.unwrap_or_default();
            match module_twin.replace_desired(desired) {
                Ok(true) => {
                    writes.push(Write::Outbox(key.clone(), module_twin.desired_version));
                    writes.push(Write::PutTwin(key, module_twin));
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(device = %device.id, %module, error = %e, "effective configuration refused by the twin");
                }
            }
        }
        if plan.assignment != device.assignment {
            if let Some(error) = &plan.assignment.error {
                tracing::warn!(device = %device.id, %error, "targeted deployments do not merge");
            }
            device.assignment = plan.assignment;
            writes.push(Write::PutDevice(device.clone()));
        }
        Ok(writes)
    }

    /// Re-evaluates one device (its tags or reported properties changed). Caller holds the lock.
    pub(super) fn reevaluate_device(&self, id: &str) -> Result<(), CloudError> {
        let Some(mut device) = self.store.device(id)? else { return Ok(()) };
        let compiled = self.compiled()?;
        let writes = self.reevaluate(&mut device, &compiled)?;
        if !writes.is_empty() {
            self.commit(writes)?;
        }
        Ok(())
    }

    /// Re-evaluates every device. Caller holds the lock.
    fn reevaluate_all(&self) -> Result<usize, CloudError> {
        let compiled = self.compiled()?;
        let (mut after, mut changed) = (String::new(), 0);
        loop {
            let page = self.store.devices(&after, BATCH)?;
            let mut writes = Vec::new();
            for mut device in page.iter().cloned() {
                let device_writes = self.reevaluate(&mut device, &compiled)?;
                changed += usize::from(!device_writes.is_empty());
                writes.extend(device_writes);
            }
            if !writes.is_empty() {
                self.commit(writes)?;
            }
            match page.last() {
                Some(last) if page.len() == BATCH => after = last.id.clone(),
                _ => return Ok(changed),
            }
        }
    }

    fn existing_deployment(&self, id: &str) -> Result<DeploymentRecord, CloudError> {
        self.store
            .deployments()?
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| CloudError::NotFound { what: "deployment", id: id.to_owned() })
    }

    /// Creates a deployment and applies it to the devices it targets.
    pub fn create_deployment(&self, new: NewDeployment) -> Result<DeploymentRecord, CloudError> {
        deployments::check_id(&new.id)?;
        let content = deployments::parse_content(&new.content)?;
        deployments::condition(&new.target_condition)?;
        deployments::check_content(&new.id, &content, new.layered)?;
        let _guard = self.lock();
        let existing = self.store.deployments()?;
        if existing.iter().any(|d| d.id == new.id) {
            return Err(CloudError::DeploymentExists(new.id));
        }
        let record = DeploymentRecord {
            id: new.id,
            content,
            target_condition: new.target_condition,
            priority: new.priority,
            layered: new.layered,
            labels: new.labels,
            created_ms: now_ms(),
            sequence: existing.iter().map(|d| d.sequence).max().unwrap_or(0) + 1,
            version: 1,
        };
        self.store.apply(vec![Write::PutDeployment(record.clone())])?;
        let changed = self.reevaluate_all()?;
        tracing::info!(deployment = %record.id, priority = record.priority, changed, "deployment created");
        Ok(record)
    }

    /// A deployment.
    pub fn deployment(&self, id: &str) -> Result<DeploymentRecord, CloudError> {
        self.existing_deployment(id)
    }

    /// Every deployment, highest priority first (then most recent).
    pub fn deployments(&self) -> Result<Vec<DeploymentRecord>, CloudError> {
        let mut all = self.store.deployments()?;
        all.sort_by(|a, b| b.priority.cmp(&a.priority).then(b.sequence.cmp(&a.sequence)));
        Ok(all)
    }

    /// Changes a deployment's target condition, priority or labels.
    pub fn update_deployment(&self, id: &str, update: DeploymentUpdate) -> Result<DeploymentRecord, CloudError> {
        if let Some(condition) = &update.target_condition {
            deployments::condition(condition)?;
        }
        let _guard = self.lock();
        let mut record = self.existing_deployment(id)?;
        check_etag("deployment", id, update.if_match.as_ref(), record.etag())?;
        let before = record.clone();
        if let Some(condition) = update.target_condition {
            record.target_condition = condition;
        }
        if let Some(priority) = update.priority {
            record.priority = priority;
        }
        if let Some(labels) = update.labels {
            record.labels = labels;
        }
        if record != before {
            record.version += 1;
            self.store.apply(vec![Write::PutDeployment(record.clone())])?;
            let changed = self.reevaluate_all()?;
            tracing::info!(deployment = %id, changed, "deployment updated");
        }
        Ok(record)
    }

    /// Deletes a deployment; devices move to what applies now.
    pub fn delete_deployment(&self, id: &str, if_match: Option<&String>) -> Result<(), CloudError> {
        let _guard = self.lock();
        let record = self.existing_deployment(id)?;
        check_etag("deployment", id, if_match, record.etag())?;
        self.store.apply(vec![Write::DeleteDeployment(id.to_owned())])?;
        let changed = self.reevaluate_all()?;
        tracing::info!(deployment = %id, changed, "deployment deleted");
        Ok(())
    }

    /// A deployment's metrics, counted over every device now.
    pub fn deployment_metrics(&self, id: &str) -> Result<Metrics, CloudError> {
        let mut metrics = Metrics::default();
        let mut after = String::new();
        loop {
            let page = self.store.devices(&after, BATCH)?;
            for device in &page {
                let agent = self.store.twin(&TwinKey::module(&device.id, "$edgeAgent"))?.unwrap_or_default();
                let report = agent_report(&agent.reported, agent.desired_version);
                metrics.count(id, &device.id, &device.assignment, report);
            }
            match page.last() {
                Some(last) if page.len() == BATCH => after = last.id.clone(),
                _ => return Ok(metrics),
            }
        }
    }
}
