//! The scalar function library, by family.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use super::{err, one, rows};
use crate::error::ErrorCategory;
use crate::scalar::ScalarValue;
use crate::{eval_constant, eval_expr_on_batch, parse_expr, values_to_batch};

#[test]
fn arithmetic_and_math() {
    assert_eq!(one("SELECT 7 / 2, 7 % 3, int_div(7, 2), -7 % 3, 2 * 3 - 1"), "3.5 1 3 -1 5");
    assert_eq!(one("SELECT abs(-3), round(2.567, 2), floor(-1.5), ceil(1.2), round(2.5)"), "3 2.57 -2 2 2");
    assert_eq!(
        one("SELECT sqrt(16), pow(2, 10), power(2, 3), exp(0), log(1), log10(1000), log2(8)"),
        "4 1024 8 1 0 3 3"
    );
    assert_eq!(one("SELECT greatest(1, 5, 3), least(4, 2.5), sign(-2), negate(5), -(-3)"), "5 2.5 -1 -5 3");
    assert_eq!(one("SELECT plus(1, 2), minus(1, 2), multiply(3, 4), divide(1, 4), modulo(10, 4)"), "3 -1 12 0.25 2");
    assert_eq!(one("SELECT 18446744073709551615 + 1"), "0");
    assert_eq!(one("SELECT is_nan(1.5 % 0), 5.0 / 0"), "true inf");
    assert_eq!(one("SELECT to_type_name(1 + 1), to_type_name(1 / 1), to_type_name(1.5 * 2)"), "int64 float64 float64");
}

#[test]
fn comparison_and_logic() {
    assert_eq!(one("SELECT 1 < 2, 2 <= 1, 'a' < 'b', 1 = 1.0, 3 != 3, NOT true"), "true false true true false false");
    assert_eq!(
        one("SELECT NULL = 1, NULL AND false, NULL OR true, 1 IS NULL, NULL IS NULL"),
        "NULL false true false true"
    );
    assert_eq!(
        one("SELECT equals(1, 1), not_equals(1, 2), less(1, 2), greater(1, 2), and(true, false), or(false, true)"),
        "true true true false false true"
    );
    assert_eq!(
        one("SELECT 'abc' LIKE 'a_c', 'abc' LIKE 'A%', 'abc' ILIKE 'A%', 'abc' NOT LIKE '%z%'"),
        "true false true true"
    );
    assert_eq!(one("SELECT like('abc', '%c'), not_like('abc', '%c'), ilike('ABC', 'a%')"), "true false true");
    assert_eq!(one("SELECT 3 IN (1, 2, 3), 'x' IN ('a'), 2 NOT IN (1), NULL IN (1)"), "true false true NULL");
    assert_eq!(one("SELECT 1 AND 2, 0 OR 0"), "true false");
}

#[test]
fn strings() {
    assert_eq!(
        one("SELECT length('hello'), length('ä'), length_utf8('ä'), lower('AbC'), upper('AbC')"),
        "5 2 1 abc ABC"
    );
    assert_eq!(one("SELECT concat('a', 'b', 'c'), concat('n=', 1), 'x' || 'y'"), "abc n=1 xy");
    assert_eq!(
        one("SELECT substring('hello', 2, 3), substr('hello', -3), substring('hello' FROM 2 FOR 2), mid('abc', 2)"),
        "ell llo el bc"
    );
    assert_eq!(
        one(
            "SELECT replace_regex('a1b22', '[0-9]+', '#'), replace_regex_one('aaa', 'a', 'b'), replaceRegexpAll('ab', '(a)(b)', '\\\\2\\\\1')"
        ),
        "a#b# baa ba"
    );
    assert_eq!(
        one("SELECT replace_all('a.b.c', '.', '-'), replace_one('a.b.c', '.', '-'), replace('xx', 'x', 'yy')"),
        "a-b-c a-b.c yyyy"
    );
    assert_eq!(
        one("SELECT position('hello', 'l'), position('hello', 'z'), locate('abc', 'c'), POSITION('b' IN 'abc')"),
        "3 0 3 2"
    );
    assert_eq!(
        one("SELECT split_by_string(',', 'a,b,,c'), split(',', 'x'), length(split_by_string('-', 'a-b'))"),
        "[a,b,(empty),c] [x] 2"
    );
    assert_eq!(
        one("SELECT trim('  a  '), trim_left('  a'), trim_right('a  '), ltrim(' x'), TRIM(LEADING FROM '  q')"),
        "a a a x q"
    );
    assert_eq!(
        one("SELECT starts_with('hello', 'he'), ends_with('hello', 'lo'), startsWith('a', 'b'), match('abc', '^a.c$')"),
        "true true false true"
    );
    assert_eq!(
        one("SELECT reverse('abc'), empty(''), not_empty('a'), left('hello', 2), right('hello', 3), repeat('ab', 3)"),
        "cba true true he llo ababab"
    );
    assert_eq!(one("SELECT upper(event_type) FROM events WHERE id = 4"), "PURCHASE");
    assert_eq!(rows("SELECT DISTINCT length(event_type) AS l FROM events ORDER BY l"), ["4", "5", "8"]);
}

#[test]
fn dates_and_times() {
    let ts = "to_datetime64('2024-03-15 13:45:30.250', 3)";
    assert_eq!(
        one(&format!("SELECT to_start_of_minute({ts}), to_start_of_hour({ts})")),
        "2024-03-15 13:45:00.000 2024-03-15 13:00:00.000"
    );
    assert_eq!(
        one(&format!(
            "SELECT to_start_of_five_minutes({ts}), to_start_of_fifteen_minutes({ts}), to_start_of_day({ts})"
        )),
        "2024-03-15 13:45:00.000 2024-03-15 13:45:00.000 2024-03-15 00:00:00.000"
    );
    assert_eq!(
        one(&format!(
            "SELECT to_start_of_week({ts}), to_monday({ts}), to_start_of_month({ts}), to_start_of_quarter({ts}), to_start_of_year({ts})"
        )),
        "2024-03-11 2024-03-11 2024-03-01 2024-01-01 2024-01-01"
    );
    assert_eq!(
        one(&format!(
            "SELECT to_yyyymmdd({ts}), toYYYYMMDD({ts}), to_yyyymm({ts}), to_year({ts}), to_month({ts}), to_day_of_month({ts})"
        )),
        "20240315 20240315 202403 2024 3 15"
    );
    assert_eq!(
        one(&format!(
            "SELECT to_hour({ts}), to_minute({ts}), to_second({ts}), to_day_of_week({ts}), to_day_of_year({ts}), to_quarter({ts})"
        )),
        "13 45 30 5 75 1"
    );
    assert_eq!(
        one(&format!("SELECT to_unix_timestamp({ts}), to_date({ts}), to_datetime({ts})")),
        "1710510330 2024-03-15 2024-03-15 13:45:30"
    );
    assert_eq!(
        one(
            "SELECT date_diff('day', to_date('2024-01-01'), to_date('2024-03-01')), date_diff('month', '2024-01-31', '2024-02-01'), dateDiff('hour', to_datetime('2024-01-01 23:00:00'), to_datetime('2024-01-02 01:00:00'))"
        ),
        "60 1 2"
    );
    assert_eq!(
        one(
            "SELECT date_diff('second', to_datetime('2024-01-01 00:00:00'), to_datetime('2024-01-01 00:01:00')), date_diff('year', '2023-12-31', '2024-01-01'), date_diff('week', '2024-01-07', '2024-01-08')"
        ),
        "60 1 1"
    );
    assert_eq!(
        one(&format!("SELECT date_trunc('minute', {ts}), date_trunc('month', {ts}), date_trunc('year', {ts})")),
        "2024-03-15 13:45:00.000 2024-03-01 00:00:00.000 2024-01-01 00:00:00.000"
    );
    assert_eq!(
        one(&format!("SELECT date_add(HOUR, 2, {ts}), date_sub('day', 1, {ts}), {ts} + INTERVAL 1 MONTH, {ts} - 5s")),
        "2024-03-15 15:45:30.250 2024-03-14 13:45:30.250 2024-04-15 13:45:30.250 2024-03-15 13:45:25.250"
    );
    assert_eq!(
        one(
            "SELECT add_months(to_date('2024-01-31'), 1), add_days(to_date('2024-02-28'), 2), subtract_years(to_date('2024-02-29'), 1)"
        ),
        "2024-02-29 2024-03-01 2023-02-28"
    );
    assert_eq!(
        one(&format!("SELECT format_datetime({ts}, '%Y/%m/%d %H:%i:%S'), formatDateTime({ts}, '%F %T %p %b')")),
        "2024/03/15 13:45:30 2024-03-15 13:45:30 PM Mar"
    );
    assert_eq!(one("SELECT now(), today(), to_type_name(now64())"), "2024-01-01 00:00:00 2024-01-01 datetime64(3)");
    assert_eq!(one("SELECT to_datetime('2024-01-01 12:00:00', '+02:00')"), "2024-01-01 12:00:00");
    assert_eq!(one("SELECT to_unix_timestamp(to_datetime('2024-01-01 12:00:00', '+02:00'))"), "1704103200");
    assert_eq!(one("SELECT to_hour(to_datetime64('2024-01-01 23:30:00', 3, '+02:00'))"), "23");
    assert_eq!(
        one("SELECT DATE '2024-02-29' + INTERVAL 1 YEAR, TIMESTAMP '2024-01-01 00:00:00'"),
        "2025-02-28 2024-01-01 00:00:00"
    );
    assert_eq!(err("SELECT to_datetime('2024-01-01', 'Europe/Berlin')").category(), ErrorCategory::NotSupported);
}

#[test]
fn conditionals_and_casts() {
    assert_eq!(one("SELECT if(1 > 2, 'a', 'b'), multi_if(false, 1, true, 2, 3), multiIf(0, 'x', 'y')"), "b 2 y");
    assert_eq!(
        one("SELECT coalesce(NULL, NULL, 3), if_null(NULL, 'd'), ifNull(1, 2), null_if(1, 1), nullIf(1, 2)"),
        "3 d 1 NULL 1"
    );
    assert_eq!(one("SELECT is_null(NULL), is_not_null(1), assume_not_null(5)"), "true true 5");
    assert_eq!(
        one("SELECT to_int32('42'), to_int64(3.9), to_uint8(255), to_float64('1.5'), to_string(12), to_bool('true')"),
        "42 3 255 1.5 12 true"
    );
    assert_eq!(
        one(
            "SELECT toInt32('7'), toUInt64(7), toFloat32(1.5), toString(1.0), toDate('2024-01-02'), toDateTime('2024-01-02 03:04:05')"
        ),
        "7 7 1.5 1 2024-01-02 2024-01-02 03:04:05"
    );
    assert_eq!(
        one("SELECT CAST(1.5 AS string), CAST('2024-01-01' AS date), '12'::uint16 + 1, CAST(3 AS nullable(int8))"),
        "1.5 2024-01-01 13 3"
    );
    assert_eq!(
        one("SELECT cast('5', 'int32'), to_decimal64(1.25, 2), to_int32_or_null('x'), to_int64_or_zero('x')"),
        "5 1.25 NULL 0"
    );
    assert_eq!(
        one("SELECT to_type_name(CAST(1 AS decimal(10, 2))), to_type_name(to_datetime64('2024-01-01', 6))"),
        "decimal(10, 2) datetime64(6)"
    );
    assert_eq!(err("SELECT to_uint8('300')").category(), ErrorCategory::DataException);
    assert_eq!(err("SELECT CAST('x' AS date)").category(), ErrorCategory::DataException);
}

#[test]
fn hashing_json_arrays_misc() {
    assert_eq!(
        one("SELECT city_hash64(''), cityHash64('') = city_hash64(''), xx_hash64('')"),
        "11160318154034397263 true 17241709254077376921"
    );
    assert_eq!(
        one(
            "SELECT city_hash64('a') != city_hash64('b'), to_type_name(weak_hash32('a')), city_hash64(1, 'a') = city_hash64(1, 'a')"
        ),
        "true uint32 true"
    );
    assert_eq!(
        one("SELECT format_readable_size(4677000), formatReadableSize(1024), format_readable_size(100)"),
        "4.46 MiB 1.00 KiB 100.00 B"
    );
    assert_eq!(one("SELECT format_readable_quantity(1234567)"), "1.23 million");
    let j = "'{\"a\": {\"b\": [10, 20]}, \"s\": \"x\", \"f\": 1.5, \"t\": true}'";
    assert_eq!(
        one(&format!(
            "SELECT json_extract_int({j}, 'a', 'b', 2), json_extract_string({j}, 's'), json_extract_float({j}, 'f'), json_extract_bool({j}, 't')"
        )),
        "20 x 1.5 true"
    );
    assert_eq!(
        one(&format!(
            "SELECT json_has({j}, 'a'), json_has({j}, 'zz'), json_extract_string({j}, 'zz'), json_extract_int({j}, 'zz'), json_length({j}, 'a', 'b')"
        )),
        "true false (empty) 0 2"
    );
    assert_eq!(
        one(&format!(
            "SELECT json_value({j}, '$.a.b[0]'), json_value({j}, '$.s'), json_query({j}, '$.a.b'), json_extract_raw({j}, 'a')"
        )),
        "10 x [[10,20]] {\"b\":[10,20]}"
    );
    assert_eq!(
        one("SELECT is_valid_json('{}'), is_valid_json('{'), JSONExtractString('{\"k\":\"v\"}', 'k')"),
        "true false v"
    );
    assert_eq!(
        rows("SELECT name, json_extract_int(attrs, 'age') FROM users ORDER BY name"),
        ["ann 31", "bob 45", "cy 0", "dee 0"]
    );
    assert_eq!(
        one("SELECT [1, 2, 3], array('a', 'b'), length([1, 2]), has([1, 2], 2), has(['a'], 'b'), index_of([5, 6], 6)"),
        "[1,2,3] [a,b] 2 true false 2"
    );
    assert_eq!(
        one("SELECT [10, 20, 30][2], [10, 20][-1], [1][5], array_element([7, 8], 1), empty([]), not_empty([1])"),
        "20 20 NULL 7 true true"
    );
    assert_eq!(
        one("SELECT to_type_name([1, 2]), to_type_name('a'), to_type_name(NULL)"),
        "array(int64) string nullable(nothing)".replace("nullable(nothing)", "nothing").as_str()
    );
}

#[test]
fn function_names_and_suggestions() {
    let e = err("SELECT toStartOfMinuet(now())");
    assert_eq!(e.category(), ErrorCategory::UndefinedFunction);
    assert!(e.to_string().contains("to_start_of_minute"), "{e}");
    assert_eq!(
        one("SELECT LOWER('A'), Upper('b'), toStartOfHour(to_datetime('2024-01-01 05:06:07'))"),
        "a B 2024-01-01 05:00:00"
    );
    assert!(crate::functions::all_names().len() > 150);
}

#[test]
fn constants_values_and_defaults() {
    let e = |s: &str| eval_constant(&parse_expr(s).expect("parse")).expect(s);
    assert_eq!(e("1 + 2"), ScalarValue::Int64(3));
    assert_eq!(e("'a' || 'b'"), ScalarValue::Utf8("ab".into()));
    assert_eq!(e("to_date('2024-01-02')"), ScalarValue::Date32(19_724));
    assert!(eval_constant(&parse_expr("nosuch(1)").expect("parse")).is_err());
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int32, false),
        Field::new("s", DataType::Utf8, true),
        Field::new("t", DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("d", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), false),
    ]));
    let rows = vec![
        vec![
            parse_expr("1").expect("p"),
            parse_expr("NULL").expect("p"),
            parse_expr("'2024-01-01 00:00:00'").expect("p"),
            parse_expr("'x'").expect("p"),
        ],
        vec![
            parse_expr("2 + 3").expect("p"),
            parse_expr("upper('q')").expect("p"),
            parse_expr("now()").expect("p"),
            parse_expr("'y'").expect("p"),
        ],
    ];
    let cols: Vec<String> = ["a", "s", "t", "d"].iter().map(|s| s.to_string()).collect();
    let b = values_to_batch(&rows, &schema, &cols).expect("values");
    assert_eq!(b.num_rows(), 2);
    assert_eq!(b.column(0).as_primitive::<arrow::datatypes::Int32Type>().value(1), 5);
    assert!(b.column(1).is_null(0));
    let bad = vec![vec![parse_expr("'x'").expect("p")]];
    let e = values_to_batch(&bad, &schema, &["a".to_string()]).expect_err("bad value");
    assert_eq!(e.category(), ErrorCategory::DataException);
    assert!(e.to_string().contains("row 1, column `a`"), "{e}");
    let nul = vec![vec![parse_expr("NULL").expect("p")]];
    assert!(values_to_batch(&nul, &schema, &["a".to_string()]).is_err());
    assert!(values_to_batch(&bad, &schema, &["zz".to_string()]).is_err());
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("size_bytes", DataType::Int64, false),
            Field::new("n", DataType::Utf8, false),
        ])),
        vec![Arc::new(Int64Array::from(vec![4_677_000, 10])), Arc::new(StringArray::from(vec!["a", "b"]))],
    )
    .expect("batch");
    let out = eval_expr_on_batch(&parse_expr("format_readable_size(size_bytes)").expect("p"), &batch).expect("eval");
    assert_eq!(out.as_string::<i32>().value(0), "4.46 MiB");
    let out =
        eval_expr_on_batch(&parse_expr("concat(n, '-', to_string(size_bytes))").expect("p"), &batch).expect("eval");
    assert_eq!(out.as_string::<i32>().value(1), "b-10");
}
