// Starts DynamoDB Local listening on 127.0.0.1 only. Its command line has no bind address (its
// Jetty server is made with a port alone, which listens on every interface), so this launcher,
// run by `java` in source-file mode beside DynamoDBLocal.jar, builds the server from the same
// arguments, sets the host of its Jetty connectors to the loopback address, then starts it and
// says so on stdout.
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDbLocal {
  public static void main(String[] args) throws Exception {
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
    Field field = DynamoDBProxyServer.class.getDeclaredField("server");
    field.setAccessible(true);
    Server server = (Server) field.get(proxy);
    for (Connector connector : server.getConnectors()) {
      ((ServerConnector) connector).setHost("127.0.0.1");
    }
    proxy.start();
    // The parent counts DynamoDB Local as started only on this line, printed once the port is
    // bound: an HTTP answer on the port alone could come from whoever took the port before java.
    int port = ((ServerConnector) server.getConnectors()[0]).getLocalPort();
    System.out.println("aigw: DynamoDB Local is listening on 127.0.0.1:" + port);
    System.out.flush();
  }
}
