// pgjdbc against a sluice server (run by tests/it/server_clients.rs with the Java source
// launcher: `java -cp postgresql.jar tests/clients/PgjdbcTest.java --port N`; the driver comes
// from Debian's libpostgresql-jdbc-java, installed by .ci/install-deps.sh when a JDK is there).
//
// Connects, creates a stream, inserts with parameters of several types, runs a historical
// SELECT with a parameter, reads a streaming SELECT in fetch-size chunks and cancels it, and
// checks an error's SQLSTATE. Exits non-zero on the first failure.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;

public class PgjdbcTest {
    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    static String sqlState(Statement st, String sql) {
        try {
            st.executeQuery(sql);
        } catch (SQLException e) {
            return e.getSQLState();
        }
        throw new AssertionError("no error from " + sql);
    }

    public static void main(String[] args) throws Exception {
        int port = 0;
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals("--port")) {
                port = Integer.parseInt(args[i + 1]);
            }
        }
        check(port > 0, "usage: PgjdbcTest --port N");
        Properties props = new Properties();
        props.setProperty("user", "sluice");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "30");
        String url = "jdbc:postgresql://127.0.0.1:" + port + "/sluice";
        try (Connection conn = DriverManager.getConnection(url, props)) {
            check(conn.getMetaData().getDatabaseProductName().equals("PostgreSQL"), "product name");
            try (Statement st = conn.createStatement()) {
                st.execute("CREATE STREAM j_events (id int64, v float64, name string, ok bool,"
                        + " at datetime64(3, 'UTC'), note nullable(string), small int32)");
            }
            Timestamp at = Timestamp.valueOf("2024-01-02 03:04:05.678");
            String insert = "INSERT INTO j_events (id, v, name, ok, at, note, small) VALUES (?, ?, ?, ?, ?, ?, ?)";
            try (PreparedStatement ps = conn.prepareStatement(insert)) {
                // Six runs: pgjdbc switches to a named server-side statement after five.
                for (int i = 1; i <= 6; i++) {
                    ps.setLong(1, i);
                    ps.setDouble(2, i * 1.5);
                    ps.setString(3, i == 3 ? "ç" : "n" + i);
                    ps.setBoolean(4, i % 2 == 0);
                    ps.setTimestamp(5, new Timestamp(at.getTime() + i * 1000L));
                    if (i % 2 == 0) {
                        ps.setNull(6, Types.VARCHAR);
                    } else {
                        ps.setString(6, "note " + i);
                    }
                    ps.setInt(7, -i);
                    check(ps.executeUpdate() == 1, "one row inserted");
                }
            }
            // Historical SELECT with a parameter.
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT id, v, name, ok, at, note, small FROM table(j_events) WHERE id >= ? ORDER BY id")) {
                ps.setLong(1, 3);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.getMetaData().getColumnCount() == 7, "seven columns");
                    check(rs.getMetaData().getColumnName(3).equals("name"), "column names");
                    check(rs.next(), "row 3");
                    check(rs.getLong(1) == 3 && rs.getDouble(2) == 4.5, "id and v");
                    check(rs.getString(3).equals("ç") && !rs.getBoolean(4), "name and ok");
                    check(rs.getTimestamp(5).getTime() == at.getTime() + 3000L, "at: " + rs.getTimestamp(5));
                    check("note 3".equals(rs.getString(6)) && rs.getInt(7) == -3, "note and small");
                    check(rs.next() && rs.getString(6) == null && rs.wasNull(), "NULL note");
                    int n = 2;
                    while (rs.next()) {
                        n++;
                    }
                    check(n == 4, "rows 3..6, got " + n);
                }
            }
            // Errors carry their SQLSTATE; the connection stays usable.
            try (Statement st = conn.createStatement()) {
                check(sqlState(st, "SELECT nope FROM table(j_events)").equals("42703"), "42703");
                check(sqlState(st, "SELECT * FROM table(no_such)").equals("42P01"), "42P01");
                try (ResultSet rs = st.executeQuery("SELECT count(*) FROM table(j_events)")) {
                    check(rs.next() && rs.getLong(1) == 6, "count after errors");
                }
            }
            // A streaming SELECT read in chunks of two (a portal with a row limit), then
            // cancelled while it waits for rows that do not come. (Statement.cancel() only
            // acts during executeQuery, not while ResultSet.next() fetches more rows, so the
            // cancel request is sent through PGConnection.)
            org.postgresql.PGConnection pg = conn.unwrap(org.postgresql.PGConnection.class);
            conn.setAutoCommit(false);
            try (PreparedStatement ps =
                    conn.prepareStatement("SELECT id FROM j_events SETTINGS seek_to = 'earliest'")) {
                ps.setFetchSize(2);
                List<Long> ids = new ArrayList<>();
                AtomicBoolean done = new AtomicBoolean(false);
                String state = null;
                try (ResultSet rs = ps.executeQuery()) {
                    while (ids.size() < 6 && rs.next()) {
                        ids.add(rs.getLong(1));
                    }
                    check(ids.size() == 6, "the six stored rows: " + ids);
                    Thread canceller = new Thread(() -> {
                        while (!done.get()) {
                            try {
                                Thread.sleep(200);
                                pg.cancelQuery();
                            } catch (Exception e) {
                                return;
                            }
                        }
                    });
                    canceller.setDaemon(true);
                    canceller.start();
                    rs.next();
                    throw new AssertionError("the streaming query ended by itself");
                } catch (SQLException e) {
                    state = e.getSQLState();
                } finally {
                    done.set(true);
                }
                check("57014".equals(state), "cancelled with 57014, got " + state);
            }
            conn.rollback();
            conn.setAutoCommit(true);
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
                check(rs.next() && rs.getInt(1) == 1, "usable after the cancel");
            }
            System.out.println("pgjdbc " + conn.getMetaData().getDriverVersion() + " ok");
        }
    }
}
