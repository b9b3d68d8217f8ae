//! The demo application that the traffic comes from, as declarative tables: services,
//! their endpoints, and what each endpoint does (methods, SQL, calls to other services,
//! third-party HTTP calls, messages).
//!
//! Templates use placeholders that [`crate::render`] fills with varying literals:
//! `{id}` (1–99999), `{n}` (1–20), `{uuid}`, `{sku}`, `{word}`, `{str}` (quoted word),
//! `{email}` (quoted), `{dec}` (12.50), `{ids}` (an IN list of 1–12 ids).

/// Which generation of OpenTelemetry semantic-convention names a service uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    /// `http.method`, `http.status_code`, `http.target`, `http.url`, `net.peer.name`,
    /// `db.system`, `db.statement`.
    Old,
    /// `http.request.method`, `http.response.status_code`, `url.path`, `url.full`,
    /// `server.address`, `db.system.name`, `db.query.text`.
    New,
}

/// How a service's instrumentation names its entry spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameStyle {
    /// `GET /api/orders/{orderId}` (from `http.route`).
    Route,
    /// `GET /products/4711`: the raw path, one name per id (poor instrumentation).
    RawPath,
    /// `GET`: just the method, as the conventions say when no route is known.
    Method,
}

/// A log-normal latency: median in milliseconds and the sigma of its logarithm.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lat {
    pub median_ms: f64,
    pub sigma: f64,
}

const fn lat(median_ms: f64, sigma: f64) -> Lat {
    Lat { median_ms, sigma }
}

/// An exception a service throws: type, message and a stack trace.
#[derive(Debug)]
pub(crate) struct ExceptionDef {
    pub ty: &'static str,
    pub message: &'static str,
    pub stacktrace: &'static str,
}

/// One service of the application.
#[derive(Debug)]
pub(crate) struct ServiceDef {
    pub name: &'static str,
    pub language: &'static str,
    pub scope: &'static str,
    pub scope_version: &'static str,
    pub port: u16,
    pub http_conv: Conv,
    pub db_conv: Conv,
    pub db_system: &'static str,
    pub db_name: &'static str,
    pub db_host: &'static str,
    /// Whether entry spans carry `http.route`.
    pub sets_route: bool,
    pub name_style: NameStyle,
    pub max_instances: u8,
    pub exception: ExceptionDef,
    pub sql_exception: ExceptionDef,
    pub endpoints: &'static [EndpointDef],
}

/// How an entry span is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// An HTTP request (SpanKind SERVER).
    Http,
    /// A message taken from a queue (SpanKind CONSUMER); `route` is the topic.
    Consumer,
}

/// An endpoint: the entry span of a transaction and what runs under it.
#[derive(Debug)]
pub(crate) struct EndpointDef {
    pub kind: EntryKind,
    pub method: &'static str,
    /// The route with `{name}` parameters as the framework knows it (`/api/orders/{orderId}`).
    pub route: &'static str,
    /// The concrete path template (`/api/orders/{id}`), may include a query.
    pub path: &'static str,
    /// Weight as a front-door transaction; 0 = only reached from other services.
    pub root_weight: u32,
    /// Own time of the entry span, outside its children.
    pub own: Lat,
    pub steps: &'static [Step],
}

/// A SQL statement template.
#[derive(Debug)]
pub(crate) struct SqlDef {
    /// Span name, `{operation} {table}`.
    pub name: &'static str,
    pub operation: &'static str,
    pub table: &'static str,
    pub text: &'static str,
    pub lat: Lat,
}

/// A call to a third-party HTTP API outside the mix.
#[derive(Debug)]
pub(crate) struct ExternalDef {
    pub method: &'static str,
    pub host: &'static str,
    pub path: &'static str,
    pub lat: Lat,
    /// Share of calls answered 503 (then retried once).
    pub fail_rate: f64,
}

/// What runs under an entry span, in order.
#[derive(Debug)]
pub(crate) enum Step {
    /// An INTERNAL span for a method, with its own nested steps.
    Method {
        name: &'static str,
        own: Lat,
        steps: &'static [Step],
    },
    /// A SQL CLIENT span.
    Sql(&'static SqlDef),
    /// An HTTP CLIENT span to another service of the mix (by base index), continuing the
    /// trace into that service's SERVER span.
    Call { service: usize, endpoint: usize },
    /// An HTTP CLIENT span to a third-party API.
    External(&'static ExternalDef),
    /// A PRODUCER span; the message is consumed later by a CONSUMER entry of `service`.
    Produce {
        topic: &'static str,
        service: usize,
        endpoint: usize,
    },
    /// The step with this probability.
    Maybe(f64, &'static Step),
    /// The step repeated between `min` and `max` times.
    Repeat(u8, u8, &'static Step),
}

// Base indices of the services, used by `Step::Call` and `Step::Produce`.
const ORDERS: usize = 1;
const PAYMENTS: usize = 2;
const INVENTORY: usize = 3;
const NOTIFY: usize = 4;

// ---- SQL --------------------------------------------------------------------------

const Q_FEATURED: SqlDef = SqlDef {
    name: "SELECT products",
    operation: "SELECT",
    table: "products",
    text: "SELECT id, name, price FROM products WHERE featured = 1 ORDER BY rank LIMIT {n}",
    lat: lat(1.2, 0.5),
};
const Q_PRICE: SqlDef = SqlDef {
    name: "SELECT prices",
    operation: "SELECT",
    table: "prices",
    text: "SELECT amount, currency FROM prices WHERE product_id = {id} AND valid_from <= NOW() ORDER BY valid_from DESC LIMIT 1",
    lat: lat(0.3, 0.4),
};
const Q_RELATED: SqlDef = SqlDef {
    name: "SELECT products",
    operation: "SELECT",
    table: "products",
    text: "SELECT p.id, p.name FROM products p JOIN product_links l ON l.to_id = p.id WHERE l.from_id = {id} AND p.id NOT IN {ids} LIMIT {n}",
    lat: lat(1.8, 0.6),
};
const Q_SESSION: SqlDef = SqlDef {
    name: "SELECT sessions",
    operation: "SELECT",
    table: "sessions",
    text: "SELECT user_id, data FROM sessions WHERE token = {str}",
    lat: lat(0.4, 0.4),
};
const Q_PRODUCT: SqlDef = SqlDef {
    name: "SELECT products",
    operation: "SELECT",
    table: "products",
    text: "SELECT * FROM products WHERE id = {id}",
    lat: lat(0.6, 0.5),
};
const Q_REVIEWS: SqlDef = SqlDef {
    name: "SELECT reviews",
    operation: "SELECT",
    table: "reviews",
    text: "SELECT r.id, r.stars, r.body, u.name FROM reviews r JOIN users u ON u.id = r.user_id WHERE r.product_id = {id} ORDER BY r.created_at DESC LIMIT {n}",
    lat: lat(2.5, 0.7),
};
const Q_USER: SqlDef = SqlDef {
    name: "SELECT users",
    operation: "SELECT",
    table: "users",
    text: "SELECT * FROM users WHERE uuid = '{uuid}'",
    lat: lat(0.5, 0.4),
};
const Q_ADDRESSES: SqlDef = SqlDef {
    name: "SELECT addresses",
    operation: "SELECT",
    table: "addresses",
    text: "SELECT * FROM addresses WHERE user_id = {id} AND deleted_at IS NULL",
    lat: lat(0.5, 0.4),
};
const Q_SEARCH: SqlDef = SqlDef {
    name: "SELECT products",
    operation: "SELECT",
    table: "products",
    text: "SELECT id, name, price FROM products WHERE name LIKE '%{word}%' OR tags LIKE '%{word}%' LIMIT 20 OFFSET {n}",
    lat: lat(8.0, 0.8),
};
const Q_CART: SqlDef = SqlDef {
    name: "SELECT cart_items",
    operation: "SELECT",
    table: "cart_items",
    text:
        "SELECT product_id, qty, price FROM cart_items WHERE cart_id = {id} AND product_id IN {ids}",
    lat: lat(0.9, 0.5),
};
const Q_CART_CLOSE: SqlDef = SqlDef {
    name: "UPDATE carts",
    operation: "UPDATE",
    table: "carts",
    text: "UPDATE carts SET status = 'closed', closed_at = NOW() WHERE id = {id}",
    lat: lat(1.1, 0.5),
};
const Q_ORDER: SqlDef = SqlDef {
    name: "SELECT orders",
    operation: "SELECT",
    table: "orders",
    text: "SELECT * FROM orders WHERE id = {id}",
    lat: lat(0.7, 0.5),
};
const Q_ORDER_ITEMS: SqlDef = SqlDef {
    name: "SELECT order_items",
    operation: "SELECT",
    table: "order_items",
    text: "SELECT * FROM order_items WHERE order_id = {id}",
    lat: lat(0.9, 0.5),
};
const Q_ORDERS_OF: SqlDef = SqlDef {
    name: "SELECT orders",
    operation: "SELECT",
    table: "orders",
    text: "SELECT id, total, status FROM orders WHERE customer_id = '{uuid}' ORDER BY created_at DESC LIMIT {n}",
    lat: lat(3.0, 0.7),
};
const Q_ORDER_INSERT: SqlDef = SqlDef {
    name: "INSERT orders",
    operation: "INSERT",
    table: "orders",
    text: "INSERT INTO orders (customer_id, email, total, status) VALUES ('{uuid}', {email}, {dec}, 'new')",
    lat: lat(1.5, 0.5),
};
const Q_ITEM_INSERT: SqlDef = SqlDef {
    name: "INSERT order_items",
    operation: "INSERT",
    table: "order_items",
    text: "INSERT INTO order_items (order_id, sku, qty, price) VALUES ({id}, '{sku}', {n}, {dec})",
    lat: lat(0.8, 0.4),
};
const Q_PAYMENT_INSERT: SqlDef = SqlDef {
    name: "INSERT payments",
    operation: "INSERT",
    table: "payments",
    text: "INSERT INTO payments (id, order_id, amount, currency) VALUES ('{uuid}', {id}, {dec}, 'EUR')",
    lat: lat(1.2, 0.5),
};
const Q_PAYMENT_UPDATE: SqlDef = SqlDef {
    name: "UPDATE payments",
    operation: "UPDATE",
    table: "payments",
    text: "UPDATE payments SET status = 'authorized', provider_ref = {str} WHERE id = '{uuid}'",
    lat: lat(1.0, 0.5),
};
const Q_PAYMENT: SqlDef = SqlDef {
    name: "SELECT payments",
    operation: "SELECT",
    table: "payments",
    text: "SELECT * FROM payments WHERE id = '{uuid}'",
    lat: lat(0.6, 0.4),
};
const Q_STOCK: SqlDef = SqlDef {
    name: "SELECT stock",
    operation: "SELECT",
    table: "stock",
    text: "SELECT qty, reserved FROM stock WHERE sku = '{sku}'",
    lat: lat(0.3, 0.4),
};
const Q_STOCK_MANY: SqlDef = SqlDef {
    name: "SELECT stock",
    operation: "SELECT",
    table: "stock",
    text: "SELECT sku, qty FROM stock WHERE product_id IN {ids}",
    lat: lat(0.8, 0.6),
};
const Q_STOCK_LOCK: SqlDef = SqlDef {
    name: "SELECT stock",
    operation: "SELECT",
    table: "stock",
    text: "SELECT sku, qty FROM stock WHERE product_id IN {ids} FOR UPDATE",
    lat: lat(1.5, 0.7),
};
const Q_STOCK_RESERVE: SqlDef = SqlDef {
    name: "UPDATE stock",
    operation: "UPDATE",
    table: "stock",
    text: "UPDATE stock SET reserved = reserved + {n} WHERE sku = '{sku}'",
    lat: lat(0.7, 0.5),
};
const Q_TEMPLATE: SqlDef = SqlDef {
    name: "SELECT templates",
    operation: "SELECT",
    table: "templates",
    text:
        "SELECT subject, body FROM templates WHERE name = 'order_confirmation' AND locale = {str}",
    lat: lat(0.2, 0.3),
};
const Q_SENT: SqlDef = SqlDef {
    name: "INSERT sent_notifications",
    operation: "INSERT",
    table: "sent_notifications",
    text: "INSERT INTO sent_notifications (order_id, recipient, sent_at) VALUES ({id}, {email}, CURRENT_TIMESTAMP)",
    lat: lat(0.4, 0.4),
};

// ---- third-party APIs --------------------------------------------------------------

const X_STRIPE: ExternalDef = ExternalDef {
    method: "POST",
    host: "api.stripe.com",
    path: "/v1/payment_intents",
    lat: lat(120.0, 0.45),
    fail_rate: 0.01,
};
const X_SENDGRID: ExternalDef = ExternalDef {
    method: "POST",
    host: "api.sendgrid.com",
    path: "/v3/mail/send",
    lat: lat(60.0, 0.5),
    fail_rate: 0.02,
};
const X_RECOMMEND: ExternalDef = ExternalDef {
    method: "GET",
    host: "recs.partner.example",
    path: "/v2/recommendations?product={id}&limit={n}",
    lat: lat(25.0, 0.6),
    fail_rate: 0.005,
};

// ---- services ----------------------------------------------------------------------

/// The base application; `--services N` above its size repeats it with suffixed names.
pub(crate) static SERVICES: &[ServiceDef] = &[
    ServiceDef {
        name: "shop-frontend",
        language: "php",
        scope: "io.opentelemetry.contrib.php.laravel",
        scope_version: "1.0.0",
        port: 80,
        http_conv: Conv::Old,
        db_conv: Conv::Old,
        db_system: "mysql",
        db_name: "shop",
        db_host: "mysql-primary",
        sets_route: false,
        name_style: NameStyle::RawPath,
        max_instances: 3,
        exception: ExceptionDef {
            ty: "Error",
            message: "Call to a member function getPrice() on null",
            stacktrace: "Error: Call to a member function getPrice() on null\n#0 /var/www/app/Http/Controllers/ProductController.php(57): App\\Services\\PriceService->format()\n#1 /var/www/vendor/laravel/framework/src/Illuminate/Routing/Controller.php(54): App\\Http\\Controllers\\ProductController->show()\n#2 /var/www/public/index.php(52): Illuminate\\Foundation\\Http\\Kernel->handle()\n#3 {main}",
        },
        sql_exception: ExceptionDef {
            ty: "PDOException",
            message: "SQLSTATE[40001]: Serialization failure: 1213 Deadlock found when trying to get lock; try restarting transaction",
            stacktrace: "PDOException: SQLSTATE[40001]: Serialization failure: 1213 Deadlock found\n#0 /var/www/vendor/laravel/framework/src/Illuminate/Database/Connection.php(580): PDOStatement->execute()\n#1 /var/www/app/Repositories/CartRepository.php(88): Illuminate\\Database\\Connection->update()\n#2 {main}",
        },
        endpoints: &[
            EndpointDef {
                kind: EntryKind::Http,
                method: "GET",
                route: "/",
                path: "/",
                root_weight: 20,
                own: lat(3.0, 0.5),
                steps: &[
                    Step::Maybe(0.6, &Step::Sql(&Q_SESSION)),
                    Step::Method {
                        name: "HomeController::index",
                        own: lat(1.5, 0.5),
                        steps: &[
                            Step::Sql(&Q_FEATURED),
                            // The N+1 pattern an APM exists to find.
                            Step::Method {
                                name: "PriceService::forProducts",
                                own: lat(0.3, 0.5),
                                steps: &[Step::Repeat(2, 10, &Step::Sql(&Q_PRICE))],
                            },
                            Step::Call { service: INVENTORY, endpoint: 2 },
                        ],
                    },
                ],
            },
            EndpointDef {
                kind: EntryKind::Http,
                method: "GET",
                route: "/products/{id}",
                path: "/products/{id}",
                root_weight: 30,
                own: lat(4.0, 0.5),
                steps: &[
                    Step::Maybe(0.6, &Step::Sql(&Q_SESSION)),
                    Step::Method {
                        name: "ProductController::show",
                        own: lat(1.0, 0.5),
                        steps: &[
                            Step::Method {
                                name: "ProductRepository::find",
                                own: lat(0.2, 0.4),
                                steps: &[Step::Sql(&Q_PRODUCT)],
                            },
                            Step::Sql(&Q_REVIEWS),
                            Step::Maybe(0.5, &Step::Sql(&Q_RELATED)),
                            Step::Sql(&Q_PRICE),
                            Step::Call { service: INVENTORY, endpoint: 0 },
                            Step::Maybe(0.3, &Step::External(&X_RECOMMEND)),
                        ],
                    },
                ],
            },
            EndpointDef {
                kind: EntryKind::Http,
                method: "GET",
                route: "/api/users/{uuid}",
                path: "/api/users/{uuid}",
                root_weight: 10,
                own: lat(1.5, 0.4),
                steps: &[Step::Sql(&Q_USER), Step::Sql(&Q_ADDRESSES)],
            },
            EndpointDef {
                kind: EntryKind::Http,
                method: "GET",
                route: "/search",
                path: "/search?q={word}&page={n}",
                root_weight: 15,
                own: lat(5.0, 0.6),
                steps: &[
                    Step::Maybe(0.6, &Step::Sql(&Q_SESSION)),
                    Step::Method {
                        name: "SearchController::index",
                        own: lat(2.0, 0.5),
                        steps: &[
                            Step::Sql(&Q_SEARCH),
                            Step::Repeat(1, 8, &Step::Sql(&Q_PRICE)),
                            Step::Call { service: INVENTORY, endpoint: 2 },
                        ],
                    },
                ],
            },
            EndpointDef {
                kind: EntryKind::Http,
                method: "POST",
                route: "/cart/checkout",
                path: "/cart/checkout",
                root_weight: 8,
                own: lat(6.0, 0.5),
                steps: &[
                    Step::Sql(&Q_SESSION),
                    Step::Method {
                        name: "CheckoutController::submit",
                        own: lat(2.0, 0.5),
                        steps: &[
                            Step::Sql(&Q_CART),
                            Step::Call { service: ORDERS, endpoint: 1 },
                            Step::Sql(&Q_CART_CLOSE),
                        ],
                    },
                ],
            },
            EndpointDef {
                kind: EntryKind::Http,
                method: "GET",
                route: "/orders/{id}",
                path: "/orders/{id}",
                root_weight: 7,
                own: lat(2.5, 0.5),
                steps: &[Step::Sql(&Q_SESSION), Step::Call { service: ORDERS, endpoint: 0 }],
            },
        ],
    },
    ServiceDef {
        name: "order-service",
        language: "java",
        scope: "io.opentelemetry.spring-webmvc-6.0",
        scope_version: "2.9.0-alpha",
        port: 8080,
        http_conv: Conv::New,
        db_conv: Conv::New,
        db_system: "postgresql",
        db_name: "orders",
        db_host: "orders-db",
        sets_route: true,
        name_style: NameStyle::Route,
        max_instances: 3,
        exception: ExceptionDef {
            ty: "java.lang.NullPointerException",
            message: "Cannot invoke \"com.shop.order.Customer.getEmail()\" because \"customer\" is null",
            stacktrace: "java.lang.NullPointerException: Cannot invoke \"com.shop.order.Customer.getEmail()\" because \"customer\" is null\n\tat com.shop.order.OrderService.create(OrderService.java:112)\n\tat com.shop.order.OrderController.create(OrderController.java:48)\n\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)\n\tat java.base/java.lang.Thread.run(Thread.java:1583)",
        },
        sql_exception: ExceptionDef {
            ty: "org.postgresql.util.PSQLException",
            message: "ERROR: could not serialize access due to concurrent update",
            stacktrace: "org.postgresql.util.PSQLException: ERROR: could not serialize access due to concurrent update\n\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2725)\n\tat com.zaxxer.hikari.pool.HikariProxyPreparedStatement.executeUpdate(HikariProxyPreparedStatement.java)\n\tat com.shop.order.OrderRepository.save(OrderRepository.java:77)",
        },
        endpoints: &[
            EndpointDef {
                kind: EntryKind::Http,
                method: "GET",
                route: "/api/orders/{orderId}",
                path: "/api/orders/{id}",
                root_weight: 10,
                own: lat(1.5, 0.4),
                steps: &[
                    Step::Method {
                        name: "OrderRepository.findById",
                        own: lat(0.3, 0.4),
                        steps: &[Step::Sql(&Q_ORDER), Step::Sql(&Q_ORDER_ITEMS)],
                    },
                    Step::Maybe(0.3, &Step::Call { service: PAYMENTS, endpoint: 1 }),
                ],
            },
            EndpointDef {
                kind: EntryKind::Http,
                method: "POST",
                route: "/api/orders",
                path: "/api/orders",
                root_weight: 0,
                own: lat(3.0, 0.5),
                steps: &[Step::Method {
                    name: "OrderService.create",
                    own: lat(1.0, 0.5),
                    steps: &[
                        Step::Call { service: INVENTORY, endpoint: 1 },
                        Step::Method {
                            name: "OrderRepository.save",
                            own: lat(0.4, 0.4),
                            steps: &[Step::Sql(&Q_ORDER_INSERT), Step::Repeat(1, 5, &Step::Sql(&Q_ITEM_INSERT))],
                        },
                        Step::Call { service: PAYMENTS, endpoint: 0 },
                        Step::Produce { topic: "orders", service: NOTIFY, endpoint: 0 },
                    ],
                }],
            },
            EndpointDef {
                kind: EntryKind::Http,
                method: "GET",
                route: "/api/orders",
                path: "/api/orders?customer={uuid}&limit={n}",
                root_weight: 5,
                own: lat(2.0, 0.5),
                steps: &[Step::Sql(&Q_ORDERS_OF)],
            },
        ],
    },
    ServiceDef {
        name: "payment-service",
        language: "go",
        scope: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
        scope_version: "0.58.0",
        port: 8081,
        http_conv: Conv::New,
        db_conv: Conv::Old,
        db_system: "postgresql",
        db_name: "payments",
        db_host: "payments-db",
        sets_route: true,
        name_style: NameStyle::Route,
        max_instances: 2,
        exception: ExceptionDef {
            ty: "*errors.errorString",
            message: "runtime error: invalid memory address or nil pointer dereference",
            stacktrace: "goroutine 42 [running]:\nmain.(*PaymentHandler).Authorize(0xc000120000, {0x9a3f20, 0xc0001b2000})\n\t/app/handler.go:87 +0x1d4\nnet/http.HandlerFunc.ServeHTTP(...)\n\t/usr/local/go/src/net/http/server.go:2220",
        },
        sql_exception: ExceptionDef {
            ty: "*pq.Error",
            message: "pq: duplicate key value violates unique constraint \"payments_pkey\"",
            stacktrace: "goroutine 42 [running]:\nmain.(*PaymentStore).Insert(...)\n\t/app/store.go:51 +0x2a8",
        },
        endpoints: &[
            EndpointDef {
                kind: EntryKind::Http,
                method: "POST",
                route: "/api/payments",
                path: "/api/payments",
                root_weight: 0,
                own: lat(2.0, 0.4),
                steps: &[Step::Method {
                    name: "PaymentHandler.Authorize",
                    own: lat(0.5, 0.4),
                    steps: &[
                        Step::Sql(&Q_PAYMENT_INSERT),
                        Step::External(&X_STRIPE),
                        Step::Sql(&Q_PAYMENT_UPDATE),
                    ],
                }],
            },
            EndpointDef {
                kind: EntryKind::Http,
                method: "GET",
                route: "/api/payments/{paymentId}",
                path: "/api/payments/{uuid}",
                root_weight: 0,
                own: lat(0.8, 0.4),
                steps: &[Step::Sql(&Q_PAYMENT)],
            },
        ],
    },
    ServiceDef {
        name: "inventory-service",
        language: "python",
        scope: "opentelemetry.instrumentation.flask",
        scope_version: "0.48b0",
        port: 5000,
        http_conv: Conv::Old,
        db_conv: Conv::New,
        db_system: "mysql",
        db_name: "inventory",
        db_host: "mysql-inventory",
        sets_route: false,
        name_style: NameStyle::Method,
        max_instances: 2,
        exception: ExceptionDef {
            ty: "KeyError",
            message: "'warehouse_id'",
            stacktrace: "Traceback (most recent call last):\n  File \"/app/inventory/views.py\", line 64, in reserve\n    wh = item[\"warehouse_id\"]\nKeyError: 'warehouse_id'",
        },
        sql_exception: ExceptionDef {
            ty: "pymysql.err.OperationalError",
            message: "(1205, 'Lock wait timeout exceeded; try restarting transaction')",
            stacktrace: "Traceback (most recent call last):\n  File \"/app/inventory/store.py\", line 31, in lock_rows\n    cur.execute(sql, params)\npymysql.err.OperationalError: (1205, 'Lock wait timeout exceeded; try restarting transaction')",
        },
        endpoints: &[
            EndpointDef {
                kind: EntryKind::Http,
                method: "GET",
                route: "/api/stock/<sku>",
                path: "/api/stock/{sku}",
                root_weight: 0,
                own: lat(0.8, 0.4),
                steps: &[Step::Sql(&Q_STOCK)],
            },
            EndpointDef {
                kind: EntryKind::Http,
                method: "POST",
                route: "/api/stock/reserve",
                path: "/api/stock/reserve",
                root_weight: 0,
                own: lat(1.5, 0.5),
                steps: &[Step::Method {
                    name: "inventory.reserve",
                    own: lat(0.5, 0.5),
                    steps: &[
                        Step::Sql(&Q_STOCK_LOCK),
                        Step::Repeat(1, 4, &Step::Sql(&Q_STOCK_RESERVE)),
                    ],
                }],
            },
            EndpointDef {
                kind: EntryKind::Http,
                method: "GET",
                route: "/api/stock",
                path: "/api/stock?ids={id},{id},{id}",
                root_weight: 0,
                own: lat(0.7, 0.4),
                steps: &[Step::Sql(&Q_STOCK_MANY)],
            },
        ],
    },
    ServiceDef {
        name: "notification-worker",
        language: "dotnet",
        scope: "OpenTelemetry.Instrumentation.ConfluentKafka",
        scope_version: "0.1.0-alpha.2",
        port: 0,
        http_conv: Conv::New,
        db_conv: Conv::Old,
        db_system: "sqlite",
        db_name: "notifications.db",
        db_host: "localhost",
        sets_route: false,
        name_style: NameStyle::Route,
        max_instances: 2,
        exception: ExceptionDef {
            ty: "System.InvalidOperationException",
            message: "Template 'order_confirmation' has no body for locale 'pt-BR'",
            stacktrace: "System.InvalidOperationException: Template 'order_confirmation' has no body for locale 'pt-BR'\n   at Notify.TemplateRenderer.Render(Template t, Order o) in /src/Notify/TemplateRenderer.cs:line 41\n   at Notify.OrderCreatedHandler.HandleAsync(OrderCreated msg) in /src/Notify/OrderCreatedHandler.cs:line 23",
        },
        sql_exception: ExceptionDef {
            ty: "Microsoft.Data.Sqlite.SqliteException",
            message: "SQLite Error 5: 'database is locked'.",
            stacktrace: "Microsoft.Data.Sqlite.SqliteException (0x80004005): SQLite Error 5: 'database is locked'.\n   at Microsoft.Data.Sqlite.SqliteException.ThrowExceptionForRC(Int32 rc, sqlite3 db)\n   at Notify.SentStore.InsertAsync(Int64 orderId) in /src/Notify/SentStore.cs:line 30",
        },
        endpoints: &[EndpointDef {
            kind: EntryKind::Consumer,
            method: "",
            route: "orders",
            path: "orders",
            root_weight: 0,
            own: lat(1.0, 0.4),
            steps: &[Step::Method {
                name: "OrderCreatedHandler.HandleAsync",
                own: lat(0.8, 0.5),
                steps: &[
                    Step::Sql(&Q_TEMPLATE),
                    Step::Method {
                        name: "TemplateRenderer.Render",
                        own: lat(2.0, 0.6),
                        steps: &[],
                    },
                    Step::External(&X_SENDGRID),
                    Step::Sql(&Q_SENT),
                ],
            }],
        }],
    },
];
