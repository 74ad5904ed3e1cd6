"""Key handling and the Azure Storage client-side encryption v1 envelope, done ourselves (streaming)."""
