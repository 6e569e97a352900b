"""Governed sharing: grants as code, per-consumer views, the audit chain, broker ACLs.

``grants`` (who may receive what, and why), ``views`` (a grant as a share topic with
only the granted fields), ``projector`` (records into views, each with an audit
record), ``chain`` (the audit trail's hash chain), ``access`` (users and ACLs derived
from the catalog and the grants), ``strimzi`` (them as Kubernetes resources).
"""
