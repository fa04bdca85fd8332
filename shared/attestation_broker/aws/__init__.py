"""AWS adapters (KMS signer, DynamoDB replay ledger, S3 collateral store) behind the broker's ports.

Nothing here imports boto3 at module import: the SDK is loaded inside constructors so that non-AWS
paths (local server, CLI, GCP/Azure deployments) never pay its cold-start cost (docs/architecture.md "Deployment").
"""
