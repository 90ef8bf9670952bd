"""The upload ledger: records and their legal status changes, the interface, the SQLite
(local) and DynamoDB (AWS) ledgers, and alerts about single uploads."""
