"""Authentication (argon2 passwords, bearer/cookie sessions, login rate limit) and roles."""
