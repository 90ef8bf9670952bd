"""The lake's places and plumbing: zone paths, the filesystem adapter over Hadoop and the
CloudWatch metrics (EMF)."""
