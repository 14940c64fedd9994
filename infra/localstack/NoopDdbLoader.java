// infra/localstack/NoopDdbLoader.java — stand-in for LocalStack's ddb-local-loader javaagent.
//
// LocalStack starts DynamoDB Local with -javaagent:<dynamodb-local/2>/ddb-local-loader-0.1.jar,
// a jar it downloads from GitHub whose only job is to lift DynamoDB Local's limit of 20 global
// secondary indexes per table. That download cannot happen here, and the project's tables stay
// far below the limit, so infra/localstack.sh builds this do-nothing agent into that jar
// instead (manifest: Premain-Class: NoopDdbLoader).
public final class NoopDdbLoader {
    private NoopDdbLoader() {}

    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
