"""Code changes that cause each kind of regression, and the log line each one produces.

Text uses {m} (Python package), {svc} (service) and {dep} (dependency) placeholders; the log
detail may also use the values `log_values` draws ({order}, {ms}, {n}, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from evals.sim.world import Category


@dataclass(frozen=True)
class Culprit:
    path: str
    function: str
    section: str  # the enclosing line git shows after @@
    before: str
    after: str
    level: str  # of the new log line
    signature: str  # fixed text of the new log template
    detail: str  # its variable part
    raise_line: str = ""  # the code line shown in the culprit's stack frame
    exception: str = ""  # last line of the traceback, when there is one


_CARD = Culprit(
    path="src/{m}/validation.py",
    function="validate_card_number",
    section="from {m}.errors import ValidationError",
    before="""
CARD_NUMBER = re.compile(r"^\\d{{13,19}}$")


def validate_card_number(number: str) -> str:
    digits = number.replace(" ", "")
    if not CARD_NUMBER.match(digits):
        raise ValidationError("card number rejected")
    return digits""",
    after="""
CARD_NUMBER = re.compile(r"^\\d{{16}}$")


def validate_card_number(number: str) -> str:
    digits = number.replace(" ", "").replace("-", "")
    if not CARD_NUMBER.match(digits):
        raise ValidationError("card number rejected")
    return digits""",
    level="error",
    signature="ValidationError: card number rejected in validate_card_number",
    detail="(order_id={order}, length={short})",
    raise_line='raise ValidationError("card number rejected")',
    exception="{m}.errors.ValidationError: card number rejected",
)
_SERIALIZER = Culprit(
    path="src/{m}/serializers.py",
    function="serialize_order",
    section="def serialize_order(order: dict[str, Any]) -> dict[str, Any]:",
    before="""    return {{
        "id": order["id"],
        "customer": order["customer_id"],
        "items": [serialize_item(i) for i in order["items"]],
        "total": str(order["total"]),
    }}""",
    after="""    return {{
        "id": order["id"],
        "customer": order["customer"]["id"],
        "items": [serialize_item(i) for i in order["items"]],
        "total": str(order["total"]),
        "currency": order["currency"],
    }}""",
    level="error",
    signature="KeyError: 'customer' in serialize_order",
    detail="(order_id={order}, route=GET /api/v1/orders/{{id}})",
    raise_line='"customer": order["customer"]["id"],',
    exception="KeyError: 'customer'",
)
_LOCALE = Culprit(
    path="src/{m}/handlers.py",
    function="resolve_locale",
    section="class RequestContext:",
    before="""    def resolve_locale(self, request: Request) -> str:
        if request.user is None:
            return DEFAULT_LOCALE
        return request.headers.get("accept-language", DEFAULT_LOCALE)""",
    after="""    def resolve_locale(self, request: Request) -> str:
        if request.user is None:
            return DEFAULT_LOCALE
        return request.user.profile.locale""",
    level="error",
    signature="AttributeError: 'NoneType' object has no attribute 'locale' in resolve_locale",
    detail="(user_id={user}, path=/api/v1/{svc})",
    raise_line="return request.user.profile.locale",
    exception="AttributeError: 'NoneType' object has no attribute 'locale'",
)
_TIMEOUT = Culprit(
    path="config/{svc}.yaml",
    function="call_upstream",
    section="upstreams:",
    before="""  {dep}:
    base_url: http://{dep}.internal:8080
    timeout_ms: 2000
    retries: 2""",
    after="""  {dep}:
    base_url: http://{dep}.internal:8080
    timeout_ms: 250
    retries: 0""",
    level="error",
    signature="TimeoutError: {dep} call exceeded timeout_ms=250 in call_upstream",
    detail="(elapsed_ms={slow}, attempt=1/1)",
    raise_line='raise TimeoutError(f"{{name}} call exceeded timeout_ms={{timeout}}")',
    exception="TimeoutError: {dep} call exceeded timeout_ms=250",
)
_POOL = Culprit(
    path="src/{m}/db.py",
    function="load_order_history",
    section="def load_order_history(customer_id: str) -> list[Order]:",
    before="""    with pool.connection() as conn:
        rows = conn.execute(HISTORY_SQL, (customer_id,)).fetchall()
    return [Order.from_row(r) for r in rows]""",
    after="""    conn = pool.getconn()
    rows = conn.execute(HISTORY_SQL, (customer_id,)).fetchall()
    if not rows:
        return []
    pool.putconn(conn)
    return [Order.from_row(r) for r in rows]""",
    level="error",
    signature="PoolTimeout: connection pool exhausted in load_order_history",
    detail="(pool_size=20, waited_ms={slow}, customer_id={user})",
    raise_line="conn = pool.getconn()",
    exception="psycopg_pool.PoolTimeout: couldn't get a connection after 5.00 sec",
)
_N_PLUS_ONE = Culprit(
    path="src/{m}/repository.py",
    function="load_line_items",
    section="class OrderRepository:",
    before="""    def load_line_items(self, order_ids: list[str]) -> list[LineItem]:
        rows = self.db.fetch_all(LINE_ITEMS_WITH_PRODUCTS_SQL, order_ids)
        return [LineItem.from_row(r) for r in rows]""",
    after="""    def load_line_items(self, order_ids: list[str]) -> list[LineItem]:
        items = [LineItem.from_row(r) for r in self.db.fetch_all(LINE_ITEMS_SQL, order_ids)]
        for item in items:
            item.product = self.db.fetch_one(PRODUCT_SQL, item.product_id)
        return items""",
    level="warn",
    signature="slow request: per-item product query in load_line_items",
    detail="(queries={n}, took_ms={slow})",
)
_RULES_CACHE = Culprit(
    path="src/{m}/rules.py",
    function="compile_rules",
    section="def compile_rules(tenant: str) -> RuleSet:",
    before="""@lru_cache(maxsize=4096)
def compile_rules(tenant: str) -> RuleSet:
    source = rules_store.fetch(tenant)
    return RuleSet.compile(source)""",
    after="""def compile_rules(tenant: str) -> RuleSet:
    source = rules_store.fetch(tenant)
    return RuleSet.compile(source, validate=True)""",
    level="warn",
    signature="slow request: compile_rules rebuilt rule set on request path",
    detail="(tenant={user}, took_ms={slow})",
)
_AUDIT = Culprit(
    path="src/{m}/middleware.py",
    function="record_audit_event",
    section="async def record_audit_event(request: Request, response: Response) -> None:",
    before="""    event = AuditEvent.from_exchange(request, response)
    audit_queue.put_nowait(event)""",
    after="""    event = AuditEvent.from_exchange(request, response)
    await audit_store.write(event, fsync=True)""",
    level="warn",
    signature="audit write slower than budget in record_audit_event",
    detail="(took_ms={ms}, budget_ms=20)",
)
_COMPRESSION = Culprit(
    path="config/{svc}.yaml",
    function="compress_response",
    section="http:",
    before="""  compression:
    enabled: true
    level: 1
    min_size_bytes: 1024""",
    after="""  compression:
    enabled: true
    level: 9
    min_size_bytes: 256""",
    level="warn",
    signature="compress_response exceeded budget at level=9",
    detail="(size_bytes={bytes}, took_ms={ms})",
)
_SETTINGS = Culprit(
    path="src/{m}/settings.py",
    function="load_settings",
    section="def load_settings() -> Settings:",
    before="""    return Settings(
        database_url=os.environ["DATABASE_URL"],
        redis_url=os.environ["REDIS_URL"],
        workers=int(os.environ.get("WORKERS", "4")),
    )""",
    after="""    return Settings(
        database_url=os.environ["DATABASE_URL"],
        redis_url=os.environ["CACHE_REDIS_URL"],
        workers=int(os.environ.get("WORKERS", "4")),
    )""",
    level="error",
    signature="startup failed: KeyError: 'CACHE_REDIS_URL' in load_settings",
    detail="(exit_code=3, restarts={restarts})",
    raise_line='redis_url=os.environ["CACHE_REDIS_URL"],',
    exception="KeyError: 'CACHE_REDIS_URL'",
)
_OOM = Culprit(
    path="src/{m}/startup.py",
    function="warm_caches",
    section="def warm_caches(app: App) -> None:",
    before="""    for tenant in app.tenants.active(limit=200):
        app.cache.preload(tenant)""",
    after="""    for tenant in app.tenants.all():
        app.cache.preload(tenant, include_history=True)""",
    level="error",
    signature="worker killed by signal 9 (out of memory) during warm_caches",
    detail="(rss_mb={mb}, restarts={restarts})",
)
_COUPON = Culprit(
    path="src/{m}/promotions.py",
    function="apply_coupon",
    section="def apply_coupon(cart: Cart, code: str, now: datetime) -> Cart:",
    before="""    coupon = coupons.get(code)
    if coupon is None or coupon.expires_at < now:
        raise CouponRejected("coupon expired or unknown")
    return cart.with_discount(coupon.discount)""",
    after="""    coupon = coupons.get(code)
    if coupon is None or coupon.expires_at > now:
        raise CouponRejected("coupon expired or unknown")
    return cart.with_discount(coupon.discount)""",
    level="warn",
    signature="checkout declined: CouponRejected in apply_coupon",
    detail="(cart_id={order}, code={coupon})",
)
_POSTCODE = Culprit(
    path="src/{m}/addresses.py",
    function="validate_postcode",
    section="def validate_postcode(country: str, postcode: str) -> bool:",
    before="""    pattern = POSTCODE_PATTERNS.get(country)
    return pattern is None or bool(pattern.fullmatch(postcode.strip().upper()))""",
    after="""    pattern = POSTCODE_PATTERNS.get(country, DEFAULT_POSTCODE)
    return bool(pattern.fullmatch(postcode))""",
    level="warn",
    signature="checkout declined: address rejected by validate_postcode",
    detail="(cart_id={order}, country={country})",
)
_MEMO = Culprit(
    path="src/{m}/cache.py",
    function="memoize_response",
    section="def memoize_response(key: str, render: Callable[[], bytes]) -> bytes:",
    before="""    cached = _responses.get(key)
    if cached is None:
        cached = render()
        _responses.set(key, cached, ttl=300)
    return cached""",
    after="""    cached = _responses.get(key)
    if cached is None:
        cached = render()
        _responses[key] = cached
    return cached""",
    level="warn",
    signature="memory watchdog: top allocation site src/{m}/cache.py in memoize_response",
    detail="(rss_mb={mb}, growth_mb={grow})",
)
_LISTENERS = Culprit(
    path="src/{m}/events.py",
    function="subscribe_session",
    section="def subscribe_session(session: Session) -> None:",
    before="""    handler = SessionHandler(session)
    bus.subscribe("price.changed", handler, weak=True)""",
    after="""    handler = SessionHandler(session, history=[])
    bus.subscribe("price.changed", handler)""",
    level="warn",
    signature="memory watchdog: top allocation site src/{m}/events.py in subscribe_session",
    detail="(rss_mb={mb}, growth_mb={grow})",
)

CULPRITS: dict[Category, tuple[Culprit, ...]] = {
    "errors": (_CARD, _SERIALIZER, _LOCALE, _TIMEOUT),
    "pool": (_POOL,),
    "latency": (_N_PLUS_ONE, _RULES_CACHE),
    "latency_minor": (_AUDIT, _COMPRESSION),
    "crash": (_SETTINGS, _OOM),
    "business": (_COUPON, _POSTCODE),
    "memory": (_MEMO, _LISTENERS),
}

# Not the deploy: what the service logs when its dependency fails.
DB_TROUBLE = (
    "OperationalError: connection to {dep} timed out",
    "(host={dep}.internal:5432, waited_ms={slow})",
)
UPSTREAM_TROUBLE = (
    "UpstreamError: {dep} returned 503 Service Unavailable",
    "(path=/v1/{svc}, attempt={attempt}/3)",
)
