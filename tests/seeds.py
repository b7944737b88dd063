"""The five seed platforms' example payloads, for tests that need real event shapes."""

from __future__ import annotations

__all__ = ["SEED_PAYLOADS"]

# The seeds' example payloads as their documentation prints them (indented, spaced),
# each also with the values a platform's real data brings: names in any script,
# ids past 2**53, prices and ratios as floats.
SEED_PAYLOADS = [
    # License Validator (seed 001)
    """{
  "event": "license.validated",
  "timestamp": "2025-01-03T14:25:30.000Z",
  "data": {
    "licenseId": "lic_xyz789",
    "licenseKey": "ABCD-1234-EFGH-5678",
    "licenseName": "Production License · Café Zürich",
    "fingerprint": "device-abc-123",
    "deviceName": "MacBook Pro de José 😀",
    "deviceType": "desktop",
    "ipAddress": "192.168.1.100",
    "currentActivations": 3,
    "maxActivations": 5,
    "usage": 0.1,
    "quota": 1E5
  }
}""",
    # LicenseChain (seed 003)
    """{
  "id": "550e8400-e29b-41d4-a716-446655440000",
  "type": "license.created",
  "data": {
    "id": "license-id",
    "licenseKey": "ABC123...",
    "userId": 12345678901234567890,
    "productId": 9007199254740993,
    "status": "active",
    "expiresAt": "2024-12-31T23:59:59Z",
    "createdAt": "2024-01-01T00:00:00Z",
    "price": 19.990,
    "discount": -0,
    "limit": 1e21,
    "note": "line one\\nline two\\ttabbed \\"quoted\\" back\\\\slash \\/ \\u00e9 \\u2028"
  },
  "timestamp": "2024-01-01T00:00:00Z",
  "signature": "hmac-sha256-signature"
}""",
    # License Manager (seed 004)
    """{
  "event_type": "license.expiring",
  "timestamp": "2024-01-15T10:30:00Z",
  "payload": {
    "license_id": 123,
    "license_code": "LIC-ABC-123",
    "product_id": "PROD-001",
    "product_reference_id": "Мой продукт",
    "customer_id": "CUST-001",
    "email": "kunde@example.de",
    "expires_at": "2024-01-22T10:30:00Z",
    "days_until_expiry": 7,
    "ratio": 1.5e-7,
    "tiny": 5e-324,
    "huge": 1.7976931348623157e308
  }
}""",
    # Babel Licensing Service (seed 000)
    """{"Id": 42, "LicenseId": "LIC-0001", "UserKey": "K-1", "Licensee": "株式会社 例",
 "LicensingMode": 1, "IssueDate": "2024-01-01T00:00:00Z", "CustomerId": 7, "OrderId": 9,
 "TemplateId": 3, "Revoked": false, "Trace": true, "Comment": null,
 "EventType": "license.created", "Timestamp": "2024-01-01T00:00:00Z"}""",
    # License Management Platform (seed 002)
    """{"type": "activation.failed", "data": {"2": "b", "10": "c", "1": "a", "01": "d",
 "4294967294": "last index", "4294967295": "not an index", "-1": "e", "x": [1.0, 2.50, 100]},
 "environment": "Production", "environment": "Staging"}""",
]
