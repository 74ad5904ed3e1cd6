"""The job types: how each plans, what its items do, the Complete* its files need; registered in one table."""
